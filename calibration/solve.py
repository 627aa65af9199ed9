"""Solve a camera's intrinsics and distortion from board views, dropping outlier views.

OpenCV's ``calibrateCameraExtended`` does the solve and gives the per-view RMS errors
and the parameters' standard deviations. A view whose error stands far above the rest
(a board that moved during exposure, a corner latched onto the wrong edge) drags the
whole solution, so such views are dropped and the solve repeated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from grasprt.calibration.boards import Detection
from grasprt.errors import ConfigError
from grasprt.types import Intrinsics

PLUMB_BOB_NAMES = ("k1", "k2", "p1", "p2", "k3")
RATIONAL_NAMES = (*PLUMB_BOB_NAMES, "k4", "k5", "k6")


@dataclass(frozen=True)
class View:
    """One image's board detection, named after its source (file name or frame number)."""

    name: str
    detection: Detection


@dataclass
class CalibrationResult:
    intrinsics: Intrinsics
    rms: float  # px, over every corner of the views used
    per_view_errors: dict[str, float]  # px RMS, views used
    dropped: dict[str, float]  # px RMS at the time each view was dropped
    std: dict[str, float]  # one standard deviation of fx, fy, cx, cy and each coefficient
    views: list[View] = field(repr=False, default_factory=list)  # views used

    @property
    def views_used(self) -> int:
        return len(self.per_view_errors)

    def to_json(self) -> dict:
        return {
            **self.intrinsics.to_dict(),
            "rms": self.rms,
            "views_used": self.views_used,
            "per_view_errors": self.per_view_errors,
            "dropped_views": self.dropped,
            "std": self.std,
        }


@dataclass(frozen=True)
class SolveOptions:
    min_views: int = 8
    rational: bool = False  # 8 coefficients (wide lenses) instead of plumb_bob's 5
    # A view is an outlier when its error is above both `outlier_factor` times the
    # median and `outlier_floor_px`; the floor keeps all-good sets from losing views.
    outlier_factor: float = 3.0
    outlier_floor_px: float = 0.5
    max_rounds: int = 3


def _solve(views: list[View], size: tuple[int, int], rational: bool) -> tuple:
    obj = [v.detection.object_points.astype(np.float32) for v in views]
    img = [v.detection.image_points.astype(np.float32) for v in views]
    flags = cv2.CALIB_RATIONAL_MODEL if rational else 0
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    try:
        return cv2.calibrateCameraExtended(
            obj, img, size, None, None, flags=flags, criteria=criteria
        )
    except cv2.error as e:
        msg = (e.err or str(e)).strip().splitlines()[0]
        raise ConfigError(f"calibration failed in OpenCV: {msg}") from None


def calibrate(
    views: list[View], width: int, height: int, options: SolveOptions | None = None
) -> CalibrationResult:
    opts = options or SolveOptions()
    if len(views) < opts.min_views:
        raise ConfigError(
            f"only {len(views)} view(s) with a detected board; need at least {opts.min_views} "
            "(move the board over the whole image, near and far, tilted)"
        )
    used = list(views)
    dropped: dict[str, float] = {}
    rounds = 0
    while True:
        rms, k, d, _, _, std_in, _, per_view = _solve(used, (width, height), opts.rational)
        errors = per_view.reshape(-1)
        limit = max(opts.outlier_factor * float(np.median(errors)), opts.outlier_floor_px)
        bad = [i for i, e in enumerate(errors) if e > limit]
        if not bad or len(used) - len(bad) < opts.min_views or rounds == opts.max_rounds:
            break
        rounds += 1
        for i in bad:
            dropped[used[i].name] = float(errors[i])
        used = [v for i, v in enumerate(used) if i not in bad]

    dist = tuple(float(x) for x in d.reshape(-1))
    names = RATIONAL_NAMES if opts.rational else PLUMB_BOB_NAMES
    dist = dist[: len(names)]
    if not np.all(np.isfinite(k)) or not all(np.isfinite(dist)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ConfigError("calibration failed: the solve gave non-finite or negative focal lengths")
    sd = std_in.reshape(-1)
    # OpenCV orders the deviations fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6, ...
    std = {n: float(sd[i]) for i, n in enumerate(("fx", "fy", "cx", "cy", *names))}
    intr = Intrinsics(
        width, height, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), dist
    )
    return CalibrationResult(
        intrinsics=intr,
        rms=float(rms),
        per_view_errors={v.name: float(e) for v, e in zip(used, errors, strict=True)},
        dropped=dropped,
        std=std,
        views=used,
    )
