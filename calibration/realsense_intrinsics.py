"""A RealSense colour stream's factory intrinsics, from the device or from a recording.

Every RealSense is calibrated at the factory and reports its colour intrinsics per
stream resolution. ``brown_conrady`` is OpenCV's own model; the ``modified`` and
``inverse`` Brown-Conrady variants that D400 colour streams report apply the tangential
terms after the radial ones, which OpenCV cannot express exactly, so the OpenCV
coefficients nearest to librealsense's projection over the image are fitted (the fit's
worst error is reported; it is far below a pixel for real lenses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grasprt.errors import DriverError
from grasprt.types import Intrinsics

# Beyond this the fitted OpenCV model would misplace pixels visibly in the model view.
MAX_FIT_ERROR_PX = 0.25

RECORDING_SUFFIXES = (".db3", ".bag")


def _rs() -> Any:
    try:
        import pyrealsense2 as rs
    except ImportError:
        raise DriverError(
            "pyrealsense2 is not installed: pip install 'grasprt[realsense]'"
        ) from None
    return rs


def _project_modified(coeffs: np.ndarray, x: np.ndarray, y: np.ndarray):
    """librealsense's projection for the modified and inverse Brown-Conrady models."""
    k1, k2, p1, p2, k3 = coeffs
    r2 = x * x + y * y
    f = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xf, yf = x * f, y * f
    return xf + 2 * p1 * xf * yf + p2 * (r2 + 2 * xf * xf), yf + 2 * p2 * xf * yf + p1 * (
        r2 + 2 * yf * yf
    )


def fit_plumb_bob(
    width: int, height: int, fx: float, fy: float, ppx: float, ppy: float, coeffs: np.ndarray
) -> tuple[tuple[float, ...], float]:
    """OpenCV plumb_bob coefficients closest to librealsense's modified Brown-Conrady.

    Returns the coefficients and the largest disagreement over the image, in pixels.
    OpenCV's model is linear in its coefficients once the undistorted points are fixed,
    so one least-squares solve over a grid of points covering the image does it.
    """
    u = np.linspace(-0.5, width - 0.5, 41)
    v = np.linspace(-0.5, height - 0.5, 31)
    x, y = np.meshgrid((u - ppx) / fx, (v - ppy) / fy)
    x, y = x.ravel(), y.ravel()
    xd, yd = _project_modified(coeffs, x, y)
    r2 = x * x + y * y
    a = np.concatenate(
        [
            np.column_stack([x * r2, x * r2 * r2, 2 * x * y, r2 + 2 * x * x, x * r2**3]),
            np.column_stack([y * r2, y * r2 * r2, r2 + 2 * y * y, 2 * x * y, y * r2**3]),
        ]
    )
    b = np.concatenate([xd - x, yd - y])
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    resid = a @ sol - b
    n = len(x)
    err = float(np.max(np.hypot(resid[:n] * fx, resid[n:] * fy)))
    return tuple(float(c) for c in sol), err


def intrinsics_from_realsense(ri: Any, label: str) -> Intrinsics:
    """Convert a ``pyrealsense2.intrinsics`` to grasprt's, refusing fisheye models."""
    rs = _rs()
    coeffs = np.array(list(ri.coeffs)[:5], np.float64)
    base = (int(ri.width), int(ri.height), float(ri.fx), float(ri.fy), float(ri.ppx), float(ri.ppy))
    if ri.model == rs.distortion.none or not np.any(coeffs):
        return Intrinsics(*base)
    if ri.model == rs.distortion.brown_conrady:
        return Intrinsics(*base, tuple(float(c) for c in coeffs))
    if ri.model in (rs.distortion.modified_brown_conrady, rs.distortion.inverse_brown_conrady):
        dist, err = fit_plumb_bob(*base, coeffs)
        if err > MAX_FIT_ERROR_PX:
            raise DriverError(
                f"{label}: its {ri.model} distortion fits OpenCV's model only to {err:.2f} px; "
                "calibrate it with grasprt calibrate-camera instead"
            )
        return Intrinsics(*base, dist)
    raise DriverError(
        f"{label}: distortion model {ri.model} (fisheye) is not supported; "
        "calibrate it with grasprt calibrate-camera"
    )


def _colour_intrinsics(device: Any, label: str, width: int | None, height: int | None):
    rs = _rs()
    profiles = [
        p.as_video_stream_profile()
        for s in device.query_sensors()
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
    return intrinsics_from_realsense(profiles[0].get_intrinsics(), label)


def read_recording_intrinsics(
    path: str | Path, width: int | None = None, height: int | None = None
) -> Intrinsics:
    """Colour intrinsics stored in a RealSense recording (``.db3``, or ``.bag`` from older SDKs)."""
    rs = _rs()
    path = Path(path)
    if not path.is_file():
        raise DriverError(f"{path}: no such recording")
    try:
        device = rs.context().load_device(str(path))
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
