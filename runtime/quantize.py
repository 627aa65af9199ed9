"""Reduced-precision segmenters, admitted only when their masks match fp32's.

int8: static QDQ quantisation of the segmenter's convolutions (ONNX Runtime's
quantiser), calibrated on frames from the simulator's wrist camera. On x86 without
VNNI, ONNX Runtime's u8 x s8 kernels can saturate a 16-bit intermediate; 7-bit
weights (``reduce_range``) avoid that, so both are tried and the gate decides.

The gate: the binary masks (probability > the bundle's threshold) of the reduced
model against fp32's on held-out simulator frames; pooled IoU (all intersections over
all unions) must be at least ``IOU_GATE``. A reduced model that fails is never used.
fp16 and bf16 need kernels this build of ONNX Runtime's CPU provider lacks on x86
(they run in fp32 emulation or not at all); they are refused with that reason.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grasprt.bundle import IMAGE, MASK, Bundle
from grasprt.errors import ConfigError

# Held-out model views by world seed: (bundle, seeds) -> 400x400x3 uint8 images. The
# simulator's (drivers/sim/views.py) is handed in by whoever builds the run, so the
# runtime never builds a driver.
ViewSource = Callable[[Bundle, Sequence[int]], list[np.ndarray]]

IOU_GATE = 0.98
CALIBRATION_SEEDS = range(1000, 1024)
HELD_OUT_SEEDS = range(2000, 2032)


@dataclass(frozen=True)
class Reduced:
    precision: str
    variant: str  # how it was made, e.g. "int8 QDQ per-channel, 7-bit weights"
    model: bytes
    iou: float  # pooled over the held-out frames
    min_iou: float  # the worst single frame
    frames: int
    # Target pixels in fp32's masks over the held-out frames. Zero makes the IoU
    # vacuous (two empty masks agree): such a gate cannot admit anything.
    reference_pixels: int

    @property
    def passed(self) -> bool:
        return self.iou >= IOU_GATE and self.reference_pixels > 0

    @property
    def verdict(self) -> str:
        if self.reference_pixels == 0:
            return "not admitted: fp32's masks are empty on the held-out frames, IoU proves nothing"
        if self.iou < IOU_GATE:
            return f"not admitted: IoU {self.iou:.4f} < {IOU_GATE}"
        return f"admitted: IoU {self.iou:.4f} >= {IOU_GATE}"

    def summary(self) -> dict[str, object]:
        return {
            "precision": self.precision,
            "variant": self.variant,
            "iou": self.iou,
            "min_iou": self.min_iou,
            "frames": self.frames,
            "reference_pixels": self.reference_pixels,
            "passed": self.passed,
            "verdict": self.verdict,
        }


def need_views(views: ViewSource | None, precision: str) -> ViewSource:
    if views is None:
        raise ConfigError(
            f"--precision {precision}: no held-out frames to gate it on "
            "(this command cannot judge reduced precision; use fp32)"
        )
    return views


def masks(model: bytes, frames: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    """Binary masks [n, 100, 100] of ``model`` on ``frames`` (one thread: repeatable)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
    out = [sess.run(["mask"], {"image": f[None]})[0][0, 0] > threshold for f in frames]
    return np.stack(out)


def mask_iou(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(pooled IoU, worst per-frame IoU) of two stacks of binary masks; two empty
    masks agree perfectly (IoU 1)."""
    a, b = a.astype(bool), b.astype(bool)
    axes = tuple(range(1, a.ndim))
    inter = np.logical_and(a, b).sum(axis=axes)
    union = np.logical_or(a, b).sum(axis=axes)
    per = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    pooled = float(inter.sum() / union.sum()) if union.sum() > 0 else 1.0
    return pooled, float(per.min()) if per.size else 1.0


class _Frames:
    """onnxruntime.quantization's CalibrationDataReader protocol over our frames."""

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        f = next(self._it, None)
        return None if f is None else {"image": f[None]}


def quantize_int8(
    segmenter: bytes, calibration: Sequence[np.ndarray], *, reduce_range: bool
) -> bytes:
    """Static QDQ int8 of the convolutions; activations u8 asymmetric, weights s8
    per output channel. Normalisation, pooling and sigmoid stay fp32."""

    # The quantiser logs advice through the root logger at WARNING; keep it off stderr.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return _quantize(segmenter, calibration, reduce_range)
    finally:
        root.setLevel(level)


def _quantize(segmenter: bytes, calibration: Sequence[np.ndarray], reduce_range: bool) -> bytes:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    with tempfile.TemporaryDirectory(prefix="grasprt-q-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(segmenter)
        quantize_static(
            str(src),
            str(dst),
            _Frames(calibration),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return dst.read_bytes()


def gate(
    reference: bytes,
    candidate: bytes,
    frames: Sequence[np.ndarray],
    threshold: float,
) -> tuple[float, float, int]:
    """(pooled IoU, worst frame's IoU, reference target pixels) of ``candidate``'s
    masks against ``reference``'s (see :func:`mask_iou`)."""
    ref = masks(reference, frames, threshold)
    iou, worst = mask_iou(ref, masks(candidate, frames, threshold))
    return iou, worst, int(ref.sum())


def judge(
    precision: str,
    variant: str,
    reference: bytes,
    candidate: bytes,
    frames: Sequence[np.ndarray],
    threshold: float,
) -> Reduced:
    iou, worst, pixels = gate(reference, candidate, frames, threshold)
    return Reduced(precision, variant, candidate, iou, worst, len(frames), pixels)


def int8_candidates(
    bundle: Bundle, views: ViewSource, calib_n: int = 24, eval_n: int = 32
) -> list[Reduced]:
    """Every int8 variant with its measured IoU; callers keep those that pass."""
    calib = views(bundle, list(CALIBRATION_SEEDS)[:calib_n])
    held_out = views(bundle, list(HELD_OUT_SEEDS)[:eval_n])
    out = []
    for reduce_range, variant in (
        (False, "int8 QDQ per-channel, 8-bit weights"),
        (True, "int8 QDQ per-channel, 7-bit weights"),
    ):
        model = quantize_int8(bundle.segmenter_bytes, calib, reduce_range=reduce_range)
        out.append(
            judge("int8", variant, bundle.segmenter_bytes, model, held_out, bundle.mask_threshold)
        )
    return out


def unsupported_reason(precision: str, provider: str) -> str | None:
    """Why ``precision`` is not offered on ``provider`` (None when it is)."""
    if precision in ("fp32", "int8"):
        return None
    if provider == "openvino":
        from grasprt.runtime.openvino_backend import unsupported_reason as ov_reason

        return ov_reason(precision)
    if provider == "cpu":
        return (
            f"{precision}: ONNX Runtime's CPU provider has no {precision} convolution "
            "kernels on x86 (use --provider openvino on CPUs with AMX/AVX512-BF16)"
        )
    return f"{precision}: not built for provider {provider!r} in this version"


def hinted_masks(model: bytes, frames: Sequence[np.ndarray], threshold: float, cfg) -> np.ndarray:
    """Masks from the backend ``cfg`` names, at its precision (OpenVINO's hint)."""
    from grasprt.runtime.openvino_backend import OpenVINOBound

    image = np.zeros(IMAGE.shape, dtype=np.uint8)
    prob = np.zeros(MASK.shape, dtype=np.float32)
    bound = OpenVINOBound(
        model, {"image": image}, {"mask": prob}, threads=1, precision=cfg.precision
    )
    out = []
    for f in frames:
        np.copyto(image[0], f)
        bound.run()
        out.append(prob[0, 0] > threshold)
    return np.stack(out)


def gate_hinted(bundle: Bundle, cfg, views: ViewSource | None) -> Reduced:
    """A precision hint (fp16/bf16 on OpenVINO) measured: its masks against ONNX
    Runtime fp32's on held-out simulator frames (passed or not)."""
    why = unsupported_reason(cfg.precision, cfg.provider)
    if why:
        raise ConfigError(f"--precision {why}")
    frames = need_views(views, cfg.precision)(bundle, list(HELD_OUT_SEEDS))
    ref = masks(bundle.segmenter_bytes, frames, bundle.mask_threshold)
    got = hinted_masks(bundle.segmenter_bytes, frames, bundle.mask_threshold, cfg)
    iou, worst = mask_iou(ref, got)
    return Reduced(cfg.precision, "OpenVINO hint", b"", iou, worst, len(frames), int(ref.sum()))


# Verdicts already measured in this process, by (segmenter digest, precision, provider):
# `grasprt eval` builds a pipeline per attempt, and the same gate need not run 150 times.
_VERDICTS: dict[tuple[str, str, str], Reduced] = {}


def _key(bundle: Bundle, precision: str, provider: str) -> tuple[str, str, str]:
    import hashlib

    return hashlib.sha256(bundle.segmenter_bytes).hexdigest(), precision, provider


def admit_hinted(bundle: Bundle, cfg, views: ViewSource | None) -> Reduced:
    """Gate a precision hint (:func:`gate_hinted`), once per process; a
    :class:`ConfigError` when not admitted."""
    why = unsupported_reason(cfg.precision, cfg.provider)
    if why:
        raise ConfigError(f"--precision {why}")
    # Refused without frames to judge by, even when judged before.
    need_views(views, cfg.precision)
    key = _key(bundle, cfg.precision, cfg.provider)
    r = _VERDICTS.get(key) or gate_hinted(bundle, cfg, views)
    _VERDICTS[key] = r
    if not r.passed:
        raise ConfigError(f"--precision {cfg.precision}: {r.verdict}; use fp32")
    return r


def reduced_segmenter(
    bundle: Bundle, precision: str, cfg: object = None, views: ViewSource | None = None
) -> Reduced:
    """The best reduced segmenter of ``precision`` that passes the gate, or a
    :class:`ConfigError` naming the measured IoU."""
    provider = getattr(cfg, "provider", "cpu")
    why = unsupported_reason(precision, provider)
    if why:
        raise ConfigError(f"--precision {why}")
    views = need_views(views, precision)
    key = _key(bundle, precision, "any")
    if key in _VERDICTS:
        return _VERDICTS[key]
    cands = int8_candidates(bundle, views)
    passing = [c for c in cands if c.passed]
    if not passing:
        best = max(cands, key=lambda c: c.iou)
        raise ConfigError(
            f"--precision int8: {best.verdict} ({best.frames} simulator frames); use fp32"
        )
    _VERDICTS[key] = max(passing, key=lambda c: c.iou)
    return _VERDICTS[key]
