"""Proof that an exported ONNX graph computes what the PyTorch module computes.

Both run on the same inputs: random and structured images for the segmenter (black,
white, a shaded yellow sphere on a texture, gradients), random and structured binary
masks with in-range and extreme joint states for the controller. The largest absolute
difference of any output element must stay within the tolerance, and the ONNX outputs
must be finite and in the contract's ranges, or the export is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from grasprt.bundle import MASK_SIZE, MODEL_SIZE
from grasprt.errors import GrasprtError
from grasprt.profiles import RobotProfile

TOLERANCE = 1e-4

Image = np.ndarray  # uint8 [1, 400, 400, 3]


class ParityError(GrasprtError):
    """The ONNX export does not reproduce the PyTorch module."""


@dataclass(frozen=True)
class ParityReport:
    mask_max_abs_err: float
    action_max_abs_err: float
    segmenter_cases: int
    controller_cases: int
    tolerance: float
    worst_segmenter_case: str
    worst_controller_case: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"parity vs PyTorch (ONNX Runtime {ort.__version__}, CPU): "
            f"mask max |err| {self.mask_max_abs_err:.2e} over {self.segmenter_cases} images, "
            f"action max |err| {self.action_max_abs_err:.2e} over {self.controller_cases} "
            f"cases (tolerance {self.tolerance:.0e})"
        )


def _sphere_on_texture(rng: np.random.Generator) -> Image:
    size = MODEL_SIZE
    # A blocky grey texture with noise: edges and clutter, as a table top might give.
    blocks = rng.integers(40, 200, size=(size // 20, size // 20, 1))
    texture = np.kron(blocks, np.ones((20, 20, 3))) + rng.normal(0, 12, (size, size, 3))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy, r = rng.uniform(120, 280), rng.uniform(120, 280), rng.uniform(15, 45)
    d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
    inside = d2 < 1.0
    # Lambert shading of a sphere lit from the upper left.
    nz = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
    shade = np.clip(0.3 + 0.7 * (nz - 0.4 * (xx - cx) / r - 0.4 * (yy - cy) / r) / 1.6, 0.1, 1.0)
    sphere = shade[..., None] * np.array([245.0, 215.0, 25.0])
    img = np.where(inside[..., None], sphere, texture)
    return np.clip(img, 0, 255).astype(np.uint8)[None]


def _gradients() -> Image:
    ramp = np.linspace(0, 255, MODEL_SIZE)
    img = np.empty((MODEL_SIZE, MODEL_SIZE, 3))
    img[..., 0] = ramp[None, :]
    img[..., 1] = ramp[:, None]
    img[..., 2] = 255 - (ramp[None, :] + ramp[:, None]) / 2
    return img.round().astype(np.uint8)[None]


def segmenter_cases(rng: np.random.Generator) -> list[tuple[str, Image]]:
    shape = (1, MODEL_SIZE, MODEL_SIZE, 3)
    return [
        ("random uint8 #1", rng.integers(0, 256, shape, dtype=np.uint8)),
        ("random uint8 #2", rng.integers(0, 256, shape, dtype=np.uint8)),
        ("all black", np.zeros(shape, np.uint8)),
        ("all white", np.full(shape, 255, np.uint8)),
        ("yellow sphere on texture #1", _sphere_on_texture(rng)),
        ("yellow sphere on texture #2", _sphere_on_texture(rng)),
        ("gradients", _gradients()),
    ]


def _disc_mask(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:MASK_SIZE, 0:MASK_SIZE]
    return (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r).astype(np.float32)[None, None]


def controller_cases(
    rng: np.random.Generator, profile: RobotProfile
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    lower = np.asarray(profile.lower, dtype=np.float32)
    upper = np.asarray(profile.upper, dtype=np.float32)
    shape = (1, 1, MASK_SIZE, MASK_SIZE)

    def state(q: np.ndarray, gripper: float) -> np.ndarray:
        return np.append(q, gripper).astype(np.float32)[None]

    def random_state() -> np.ndarray:
        return state(rng.uniform(lower, upper), float(rng.uniform(0, 1)))

    def random_mask(density: float) -> np.ndarray:
        return (rng.random(shape) < density).astype(np.float32)

    neutral = np.asarray(profile.neutral, dtype=np.float32)
    return [
        ("sparse random mask, random state", random_mask(0.02), random_state()),
        ("half random mask, random state", random_mask(0.5), random_state()),
        ("dense random mask, random state", random_mask(0.9), random_state()),
        ("disc mask, neutral, open", _disc_mask(50, 50, 6), state(neutral, 0.0)),
        ("off-centre disc, neutral, closed", _disc_mask(12, 80, 10), state(neutral, 1.0)),
        ("empty mask, lower limits", np.zeros(shape, np.float32), state(lower, 0.0)),
        ("full mask, upper limits", np.ones(shape, np.float32), state(upper, 1.0)),
        ("random mask, far beyond limits", random_mask(0.1), state(upper * 4, 5.0)),
        ("random mask, far below limits", random_mask(0.1), state(lower * 4, -5.0)),
    ]


# How far past its range an output may round. ONNX Runtime's CPU Tanh gives
# +-1.0000002 for saturated inputs (measured, 1.32: from |x| ~ 9), so a well-trained
# controller whose outputs saturate would otherwise be refused. The limiter clips to
# [-1, 1] anyway; this only keeps the check from mistaking rounding for a broken graph.
RANGE_SLACK = 1e-6


def _session(model_bytes: bytes, role: str) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types are not importable API
        first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ParityError(
            f"parity: ONNX Runtime cannot load the exported {role}: {first}"
        ) from None


def _check_outputs(name: str, case: str, out: np.ndarray, lo: float, hi: float) -> None:
    if not np.all(np.isfinite(out)):
        raise ParityError(f"parity: ONNX {name} is not finite on case '{case}'")
    if out.min() < lo - RANGE_SLACK or out.max() > hi + RANGE_SLACK:
        raise ParityError(
            f"parity: ONNX {name} leaves [{lo:g}, {hi:g}] on case '{case}' "
            f"(range {out.min():.4g} .. {out.max():.4g})"
        )


@dataclass(frozen=True)
class TensorParity:
    """One graph's result: the largest error, over how many cases, and where."""

    max_abs_err: float
    cases: int
    worst_case: str


def _compare(name: str, cases: list[tuple[str, np.ndarray]], tolerance: float) -> TensorParity:
    """``cases``: (case, ONNX output, PyTorch output); refuse past ``tolerance``."""
    worst, worst_case = -1.0, ""
    for case, got, ref in cases:
        if not np.all(np.isfinite(ref)):
            raise ParityError(f"parity: PyTorch {name} is not finite on case '{case}'")
        if got.shape != ref.shape:
            raise ParityError(
                f"parity: ONNX {name} has shape {list(got.shape)}, PyTorch gives "
                f"{list(ref.shape)} (case '{case}')"
            )
        err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
        if err > worst:
            worst, worst_case = err, case
    if worst > tolerance:
        raise ParityError(
            f"parity: ONNX {name} differs from PyTorch by {worst:.3g} on case '{worst_case}' "
            f"(tolerance {tolerance:g}); the export is refused"
        )
    return TensorParity(worst, len(cases), worst_case)


def segmenter_parity(
    graph: torch.nn.Module, onnx_bytes: bytes, tolerance: float = TOLERANCE, seed: int = 0
) -> TensorParity:
    sess = _session(onnx_bytes, "segmenter")
    results = []
    with torch.no_grad():
        for case, image in segmenter_cases(np.random.default_rng(seed)):
            (got,) = sess.run(["mask"], {"image": image})
            _check_outputs("mask", case, got, 0.0, 1.0)
            results.append((case, got, graph(torch.from_numpy(image)).numpy()))
    return _compare("mask", results, tolerance)


def controller_parity(
    graph: torch.nn.Module,
    onnx_bytes: bytes,
    profile: RobotProfile,
    tolerance: float = TOLERANCE,
    seed: int = 0,
) -> TensorParity:
    sess = _session(onnx_bytes, "controller")
    results = []
    with torch.no_grad():
        for case, mask, state in controller_cases(np.random.default_rng(seed), profile):
            (got,) = sess.run(["action"], {"mask": mask, "state": state})
            _check_outputs("action", case, got, -1.0, 1.0)
            ref = graph(torch.from_numpy(mask), torch.from_numpy(state)).numpy()
            results.append((case, got, ref))
    return _compare("action", results, tolerance)


def report(segmenter: TensorParity, controller: TensorParity, tolerance: float) -> ParityReport:
    return ParityReport(
        mask_max_abs_err=segmenter.max_abs_err,
        action_max_abs_err=controller.max_abs_err,
        segmenter_cases=segmenter.cases,
        controller_cases=controller.cases,
        tolerance=tolerance,
        worst_segmenter_case=segmenter.worst_case,
        worst_controller_case=controller.worst_case,
    )
