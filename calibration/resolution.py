"""Carry intrinsics calibrated at one resolution over to another of the same aspect.

Cameras scale their whole sensor image to each output size, so a calibration made at
1280x720 holds at 640x360 once scaled. Pixel centres sit at integer coordinates, so
scaling happens about the image's corner at (-0.5, -0.5), not about pixel (0, 0).
"""

from __future__ import annotations

from dataclasses import replace

from grasprt.errors import ConfigError
from grasprt.types import Intrinsics

# Aspect ratios closer than this are the same sensor area rounded to whole pixels.
_ASPECT_TOLERANCE = 0.01


def fit_to_resolution(intr: Intrinsics, width: int, height: int) -> Intrinsics:
    """``intr`` scaled to a ``width`` x ``height`` image; refuses a different aspect ratio."""
    if (intr.width, intr.height) == (width, height):
        return intr
    sx, sy = width / intr.width, height / intr.height
    if abs(sx / sy - 1.0) > _ASPECT_TOLERANCE:
        raise ConfigError(
            f"intrinsics are for {intr.width}x{intr.height} but frames are {width}x{height} "
            "(another aspect ratio: a crop, not a scale); calibrate at this resolution"
        )
    return replace(
        intr,
        width=width,
        height=height,
        fx=intr.fx * sx,
        fy=intr.fy * sy,
        cx=(intr.cx + 0.5) * sx - 0.5,
        cy=(intr.cy + 0.5) * sy - 0.5,
    )
