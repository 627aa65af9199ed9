"""Where a camera's intrinsics come from, named in one string on the command line.

``FILE.yaml`` (a ROS camera_info file, as ``grasprt calibrate-camera`` writes), a
RealSense recording (``.db3``/``.bag``), or ``realsense`` / ``realsense:SERIAL`` for the
factory calibration of a connected camera.
"""

from __future__ import annotations

from pathlib import Path

from grasprt.calibration.camera_info import load_camera_info
from grasprt.calibration.realsense_intrinsics import (
    RECORDING_SUFFIXES,
    read_device_intrinsics,
    read_recording_intrinsics,
)
from grasprt.errors import ConfigError
from grasprt.types import Intrinsics

SOURCE_HELP = "FILE.yaml, a RealSense recording (.db3/.bag), realsense or realsense:SERIAL"


def load_intrinsics(
    source: str, *, width: int | None = None, height: int | None = None
) -> Intrinsics:
    """Intrinsics from ``source``; ``width``/``height`` pick a RealSense stream size."""
    if source == "realsense" or source.startswith("realsense:"):
        serial = source.partition(":")[2] or None
        return read_device_intrinsics(serial, width, height)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in RECORDING_SUFFIXES:
        return read_recording_intrinsics(path, width, height)
    if suffix in (".yaml", ".yml"):
        return load_camera_info(path)
    raise ConfigError(f"intrinsics source '{source}': expected {SOURCE_HELP}")
