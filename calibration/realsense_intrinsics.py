"""A RealSense colour stream's factory intrinsics, from the device or from a recording.

Every RealSense is calibrated at the factory and reports its colour intrinsics per
stream resolution, without streaming: this reads them from a connected camera or from
the stream profiles stored in a recording, and converts them as the RealSense driver
does (OpenCV ``plumb_bob``, fitted where librealsense's polynomial differs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grasprt.errors import DriverError
from grasprt.types import Intrinsics

RECORDING_SUFFIXES = (".db3", ".bag")


def _rs() -> Any:
    from grasprt.drivers.realsense import import_pyrealsense2

    return import_pyrealsense2()


def _convert(ri: Any, label: str) -> Intrinsics:
    # The RealSense driver owns the conversion (and the plumb_bob fit), so the camera
    # in the loop and a file written here agree to the last digit.
    from grasprt.drivers.realsense import intrinsics_from_realsense

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
