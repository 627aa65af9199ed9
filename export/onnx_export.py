"""PyTorch networks -> a model bundle that follows INTERFACE.md, or nothing at all.

The order is what makes a bundle trustworthy: export both graphs, stamp their
metadata, run ``onnx.checker`` and the contract's tensor checks, prove parity with
ONNX Runtime against PyTorch, write everything into a temporary directory next to the
target, load it back through :func:`grasprt.bundle.load_bundle`, and only then rename
it into place. Any failure leaves the target as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

import grasprt
from grasprt.bundle import (
    INTERFACE_VERSION,
    MANIFEST,
    MASK_SIZE,
    MODEL_SIZE,
    N_JOINTS,
    STATE_SIZE,
    Bundle,
    check_contract,
    load_bundle,
)
from grasprt.errors import ConfigError, GrasprtError
from grasprt.export.checkpoints import file_sha256
from grasprt.export.defaults import (
    DEFAULT_ACTION_SCALE,
    DEFAULT_MASK_THRESHOLD,
    DEFAULT_RATE_HZ,
    IMAGE_MEAN,
    IMAGE_STD,
    as_bundle_camera,
    default_camera,
    state_normalisation,
)
from grasprt.export.models import Controller, ControllerGraph, Segmenter, SegmenterGraph
from grasprt.export.parity import (
    TOLERANCE,
    ParityReport,
    controller_parity,
    report,
    segmenter_parity,
)
from grasprt.profiles import get_profile
from grasprt.types import Intrinsics

OPSET = 18
SEGMENTER_FILE = "segmenter.onnx"
CONTROLLER_FILE = "controller.onnx"
# torch.export specialises a dimension whose example size is 1, so the batch is
# traced at 2 and declared symbolic; the runtime then feeds 1.
_TRACE_BATCH = 2


@dataclass(frozen=True)
class ExportResult:
    out: Path
    bundle: Bundle
    parity: ParityReport

    def summary(self) -> str:
        b = self.bundle
        sizes = ", ".join(
            f"{p.name} ({len(data) / 1024:.0f} KiB, sha256 {sha[:12]}…)"
            for p, data, sha in (
                (b.segmenter_path, b.segmenter_bytes, b.segmenter_sha256),
                (b.controller_path, b.controller_bytes, b.controller_sha256),
            )
        )
        return f"wrote {self.out}: {sizes}\n{self.parity.summary()}"


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter logs progress and deprecation chatter; keep the CLI's output ours."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_onnx(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_name: str,
    role: str,
) -> onnx.ModelProto:
    """One module -> a checked, metadata-stamped ONNX model with a symbolic batch."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {name: {0: batch} for name in input_names}
    module = module.eval()
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                module,
                example,
                input_names=list(input_names),
                output_names=[output_name],
                dynamic_shapes=dynamic,
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    except Exception as e:  # the exporter raises many types; all mean the same here
        first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise GrasprtError(f"{role}: ONNX export failed: {first.strip()}") from None
    proto = program.model_proto
    proto.producer_name = "grasprt export"
    proto.producer_version = grasprt.__version__
    del proto.metadata_props[:]
    onnx.helper.set_model_props(
        proto, {"grasprt.interface": str(INTERFACE_VERSION), "grasprt.role": role}
    )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise GrasprtError(f"{role}: exported model fails onnx.checker: {e}") from None
    check_contract(proto, role)
    return proto


def export_segmenter(graph: SegmenterGraph) -> onnx.ModelProto:
    image = torch.zeros((_TRACE_BATCH, MODEL_SIZE, MODEL_SIZE, 3), dtype=torch.uint8)
    return to_onnx(graph, (image,), ["image"], "mask", "segmenter")


def export_controller(graph: ControllerGraph) -> onnx.ModelProto:
    mask = torch.zeros((_TRACE_BATCH, 1, MASK_SIZE, MASK_SIZE), dtype=torch.float32)
    state = torch.zeros((_TRACE_BATCH, STATE_SIZE), dtype=torch.float32)
    return to_onnx(graph, (mask, state), ["mask", "state"], "action", "controller")


def _scales(action_scale: float | Sequence[float]) -> list[float]:
    if isinstance(action_scale, int | float):
        action_scale = [float(action_scale)] * N_JOINTS
    scales = [float(x) for x in action_scale]
    if len(scales) != N_JOINTS or not all(math.isfinite(x) and x > 0 for x in scales):
        raise ConfigError(f"action scale must be 1 or {N_JOINTS} positive numbers, got {scales}")
    return scales


def _check_target(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not force:
        raise ConfigError(f"{out}: already exists; pass --force to replace it")
    # --force replaces a bundle, never an arbitrary directory named by mistake.
    if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file()):
        raise ConfigError(f"{out}: exists and is not a model bundle; refusing to replace it")


def _replace_dir(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, old / "bundle")
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old / "bundle", out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def export_bundle(
    segmenter: Segmenter,
    controller: Controller,
    out: str | Path,
    *,
    robot: str = "sawyer",
    rate_hz: float = DEFAULT_RATE_HZ,
    action_scale: float | Sequence[float] = DEFAULT_ACTION_SCALE,
    mask_threshold: float = DEFAULT_MASK_THRESHOLD,
    camera: Intrinsics | None = None,
    checkpoints: Mapping[str, Path] | None = None,
    provenance: Mapping[str, Any] | None = None,
    force: bool = False,
    tolerance: float = TOLERANCE,
    seed: int = 0,
    state_norm: tuple[np.ndarray, np.ndarray] | None = None,
) -> ExportResult:
    """Export both networks to the bundle directory ``out``, proven or not written.

    ``checkpoints`` (role -> file) are hashed into the provenance; ``provenance`` adds
    free-form entries to it. ``state_norm`` (offset, scale) is the controller's input
    normalisation when its training chose one; None: the profile's joint ranges.
    Raises a :class:`~grasprt.errors.GrasprtError` subclass on bad arguments, a failed
    export or failed parity.
    """
    out = Path(out)
    profile = get_profile(robot)
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(f"rate must be a positive number of Hz, got {rate_hz}")
    if not 0.0 < mask_threshold < 1.0:
        raise ConfigError(f"mask threshold must lie strictly between 0 and 1, got {mask_threshold}")
    scales = _scales(action_scale)
    cam = default_camera() if camera is None else as_bundle_camera(camera, "camera")
    _check_target(out, force)

    offset, scale = state_normalisation(profile) if state_norm is None else state_norm
    seg_graph = SegmenterGraph(segmenter).eval()
    ctrl_graph = ControllerGraph(controller, offset, scale).eval()
    # Each graph is proven as soon as it exists: a bad segmenter fails before the
    # controller's export is paid for.
    seg_bytes = export_segmenter(seg_graph).SerializeToString()
    seg_parity = segmenter_parity(seg_graph, seg_bytes, tolerance, seed)
    ctrl_bytes = export_controller(ctrl_graph).SerializeToString()
    ctrl_parity = controller_parity(ctrl_graph, ctrl_bytes, profile, tolerance, seed)
    parity = report(seg_parity, ctrl_parity, tolerance)

    sources = {role: file_sha256(Path(p)) for role, p in (checkpoints or {}).items()}
    if not set(sources) <= {"segmenter", "controller"}:
        raise ValueError(f"checkpoints are for 'segmenter' and 'controller', got {sorted(sources)}")
    prov: dict[str, Any] = {
        "exporter": f"grasprt {grasprt.__version__}",
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "opset": OPSET,
        "segmenter": {
            "architecture": "paper: 5 conv 5x5 (dilation 2 on conv2, conv4), max-pool after "
            "conv1 and conv2, ReLU, sigmoid",
            "widths": list(segmenter.widths),
            "gflop_per_image": round(segmenter.flops() / 1e9, 3),
            "image_normalisation": {"divide": 255, "mean": IMAGE_MEAN, "std": IMAGE_STD},
        },
        "controller": {
            "architecture": "paper: mask conv16 5x5/4, conv32 5x5/4, FC128; state FC 8->128; "
            "FC 256->128, FC 128->8, tanh",
            "state_normalisation": {
                "rule": "(state - offset) / scale: "
                + (
                    "joint range -> [-1, 1], gripper 0..1 -> [-1, 1]"
                    if state_norm is None
                    else "the controller's training statistics (from its checkpoint)"
                ),
                "offset": [round(float(x), 6) for x in offset],
                "scale": [round(float(x), 6) for x in scale],
            },
        },
        "parity": parity.as_dict(),
    }
    for role, sha in sources.items():
        prov[role]["checkpoint_sha256"] = sha
    prov.update(provenance or {})

    manifest = {
        "interface": INTERFACE_VERSION,
        "robot": profile.name,
        "joints": list(profile.joint_names),
        "rate_hz": float(rate_hz),
        "action_scale": scales,
        "mask_threshold": float(mask_threshold),
        "camera": {
            "width": cam.width,
            "height": cam.height,
            "fx": cam.fx,
            "fy": cam.fy,
            "cx": cam.cx,
            "cy": cam.cy,
        },
        "segmenter": {"path": SEGMENTER_FILE, "sha256": _sha(seg_bytes)},
        "controller": {"path": CONTROLLER_FILE, "sha256": _sha(ctrl_bytes)},
        "provenance": prov,
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is for every user of the PC
        (tmp / SEGMENTER_FILE).write_bytes(seg_bytes)
        (tmp / CONTROLLER_FILE).write_bytes(ctrl_bytes)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        load_bundle(tmp)  # the runtime's own check, before the bundle is anywhere it could run
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(out=out, bundle=load_bundle(out), parity=parity)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
