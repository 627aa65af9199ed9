"""A RealSense colour stream's factory intrinsics, from the device or from a recording.

Every RealSense is calibrated at the factory and reports its colour intrinsics per
stream resolution, without streaming: this reads them from a connected camera or from
the stream profiles stored in a recording, and converts them as the RealSense driver
does (OpenCV ``plumb_bob``, fitted where librealsense's polynomial differs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from grasprt.errors import DriverError
from grasprt.types import Intrinsics

# The one list of RealSense recording suffixes (.bag from older SDKs). It lives in this
# lower layer so that the drivers import it from here, never the other way round.
RECORDING_SUFFIXES = (".db3", ".bag")


log = logging.getLogger(__name__)

INSTALL_HINT = "pyrealsense2 is not installed: pip install 'grasprt[realsense]'"
# Beyond this the fitted OpenCV distortion would mislead more than help.
_MAX_FIT_ERROR_PX = 2.0


def import_pyrealsense2() -> ModuleType:
    """pyrealsense2, or a DriverError that says how to get it working."""
    try:
        import pyrealsense2
    except ImportError as e:
        if "libusb" in str(e):
            raise DriverError(
                "pyrealsense2 cannot load libusb-1.0: apt install libusb-1.0-0"
            ) from None
        raise DriverError(INSTALL_HINT) from None
    return pyrealsense2


# -- intrinsics ------------------------------------------------------------------------


def _fit_plumb_bob(undistorted: np.ndarray, distorted: np.ndarray) -> np.ndarray:
    """OpenCV (k1, k2, p1, p2, k3) that best send normalised ``undistorted`` to ``distorted``.

    OpenCV's forward model is linear in its coefficients once the undistorted point is
    known, so this is one least-squares solve.
    """
    x, y = undistorted[:, 0], undistorted[:, 1]
    r2 = x * x + y * y
    rows_x = np.stack([x * r2, x * r2**2, 2 * x * y, r2 + 2 * x * x, x * r2**3], 1)
    rows_y = np.stack([y * r2, y * r2**2, r2 + 2 * y * y, 2 * x * y, y * r2**3], 1)
    a = np.concatenate([rows_x, rows_y])
    b = np.concatenate([distorted[:, 0] - x, distorted[:, 1] - y])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _radial(points: np.ndarray, k: Sequence[float]) -> np.ndarray:
    r2 = (points**2).sum(1)
    return 1 + k[0] * r2 + k[1] * r2**2 + k[4] * r2**3


def _librealsense_distortion(points: np.ndarray, k: Sequence[float]) -> np.ndarray:
    """librealsense's forward (undistorted -> distorted) Brown-Conrady variant.

    librealsense 2.59 projects both ``modified_brown_conrady`` and
    ``inverse_brown_conrady`` points with this polynomial (rsutil.h), and its
    deprojection of ``inverse_brown_conrady`` inverts it. Unlike OpenCV, the tangential
    terms act on the radially scaled point.
    """
    r2 = (points**2).sum(1)
    x, y = points[:, 0] * _radial(points, k), points[:, 1] * _radial(points, k)
    dx = x + 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
    dy = y + 2 * k[3] * x * y + k[2] * (r2 + 2 * y * y)
    return np.stack([dx, dy], 1)


def intrinsics_from_realsense(
    width: int,
    height: int,
    fx: float,
    fy: float,
    ppx: float,
    ppy: float,
    model: str,
    coeffs: Sequence[float],
) -> Intrinsics:
    """librealsense intrinsics as :class:`Intrinsics` with OpenCV ``plumb_bob`` distortion.

    ``brown_conrady`` is OpenCV's model already. ``modified_brown_conrady`` and
    ``inverse_brown_conrady`` project with a slightly different polynomial, so OpenCV
    coefficients are fitted to it over the image (worst error logged, typically
    hundredths of a pixel). Fisheye models, and fits worse than a few pixels, raise
    ValueError: they have no faithful plumb_bob form.
    """
    k = [float(c) for c in coeffs][:5]
    k += [0.0] * (5 - len(k))
    if model == "none" or not any(k):
        return Intrinsics(width, height, fx, fy, ppx, ppy)
    if model == "brown_conrady":
        return Intrinsics(width, height, fx, fy, ppx, ppy, tuple(k))
    if model not in ("modified_brown_conrady", "inverse_brown_conrady"):
        raise ValueError(f"the {model} distortion model has no OpenCV plumb_bob equivalent")
    us, vs = np.meshgrid(np.linspace(0, width - 1, 33), np.linspace(0, height - 1, 25))
    undistorted = np.stack([(us.ravel() - ppx) / fx, (vs.ravel() - ppy) / fy], 1)
    distorted = _librealsense_distortion(undistorted, k)
    fitted = _fit_plumb_bob(undistorted, distorted)
    intr = Intrinsics(width, height, fx, fy, ppx, ppy, tuple(float(c) for c in fitted))
    projected, _ = cv2.projectPoints(
        np.column_stack([undistorted, np.ones(len(undistorted))]),
        np.zeros(3),
        np.zeros(3),
        intr.matrix(),
        np.array(intr.dist),
    )
    target = distorted * [fx, fy] + [ppx, ppy]
    error_px = float(np.abs(projected[:, 0, :] - target).max())
    if not error_px <= _MAX_FIT_ERROR_PX:
        raise ValueError(f"{model} distortion fits OpenCV's model only to {error_px:.3g} px")
    log.info("%s distortion as OpenCV plumb_bob: worst error %.3f px", model, error_px)
    return intr


# -- capture time ----------------------------------------------------------------------


def _rs() -> Any:
    return import_pyrealsense2()


def _convert(ri: Any, label: str) -> Intrinsics:
    # One conversion (and plumb_bob fit) for the driver and for this module, so the
    # camera in the loop and a file written here agree to the last digit.
    model = str(ri.model).rsplit(".", 1)[-1]
    try:
        return intrinsics_from_realsense(
            ri.width, ri.height, ri.fx, ri.fy, ri.ppx, ri.ppy, model, list(ri.coeffs)
        )
    except ValueError as e:
        raise DriverError(f"{label}: {e}; calibrate it with grasprt calibrate-camera") from None


def _colour_intrinsics(device: Any, label: str, width: int | None, height: int | None):
    rs = _rs()
    # The sensors own their profiles: keep them referenced while the profiles are used.
    sensors = list(device.query_sensors())
    profiles = [
        p.as_video_stream_profile()
        for s in sensors
        for p in s.get_stream_profiles()
        if p.stream_type() == rs.stream.color and p.is_video_stream_profile()
    ]
    if not profiles:
        raise DriverError(f"{label}: has no colour stream")
    if width is not None and height is not None:
        sized = [p for p in profiles if (p.width(), p.height()) == (width, height)]
        if not sized:
            sizes = sorted({f"{p.width()}x{p.height()}" for p in profiles})
            raise DriverError(
                f"{label}: no {width}x{height} colour stream (has {', '.join(sizes)})"
            )
        profiles = sized
    else:
        profiles = [p for p in profiles if p.is_default()] or profiles
    return _convert(profiles[0].get_intrinsics(), label)


def read_recording_intrinsics(
    path: str | Path, width: int | None = None, height: int | None = None
) -> Intrinsics:
    """Colour intrinsics stored in a RealSense recording (``.db3``, or ``.bag`` from older SDKs)."""
    rs = _rs()
    path = Path(path)
    if not path.is_file():
        raise DriverError(f"{path}: no such recording")
    context = rs.context()  # the playback device lives in this context
    try:
        device = context.load_device(str(path))
    except RuntimeError as e:
        raise DriverError(f"{path}: not a readable RealSense recording ({e})") from None
    return _colour_intrinsics(device, str(path), width, height)


def read_device_intrinsics(
    serial: str | None = None, width: int | None = None, height: int | None = None
) -> Intrinsics:
    """Factory colour intrinsics of a connected RealSense (the only one, or by serial)."""
    rs = _rs()
    devices = list(rs.context().query_devices())
    if not devices:
        raise DriverError("no RealSense camera is connected")

    def serial_of(d: Any) -> str:
        return d.get_info(rs.camera_info.serial_number)

    if serial is None:
        if len(devices) > 1:
            found = ", ".join(serial_of(d) for d in devices)
            raise DriverError(f"{len(devices)} RealSense cameras connected ({found}): name one")
        device = devices[0]
    else:
        matches = [d for d in devices if serial_of(d) == serial]
        if not matches:
            found = ", ".join(serial_of(d) for d in devices)
            raise DriverError(f"no RealSense with serial {serial} (connected: {found})")
        device = matches[0]
    return _colour_intrinsics(device, f"RealSense {serial_of(device)}", width, height)
