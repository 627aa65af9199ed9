"""The exporter's defaults and fixed conventions (no torch: tests and tools share them).

Where INTERFACE.md leaves a number to us, it is chosen here, once:

- ``DEFAULT_ACTION_SCALE`` = 0.05 rad per unit of action, every joint. At the paper's
  10 Hz a full-scale action moves a joint 0.5 rad/s, under the Sawyer's slowest joint
  (right_j1, 1.328 rad/s in the URDF) with a margin of more than 2.5x; the limiter
  still clamps whatever a network asks.
- Image normalisation inside the segmenter: bytes / 255, then ImageNet mean and std per
  channel (what pretrained backbones and most training code expect).
- State normalisation inside the controller: each joint angle is mapped from its
  profile range [lower, upper] to [-1, 1] (``(q - centre) / half_range``), the gripper
  from [0, 1] to [-1, 1]. Training code must apply the same mapping to its inputs; the
  numbers are written into the bundle's provenance. A controller checkpoint that
  carries its own ``state_normalisation`` (offset, scale) is exported with that one
  instead (the reference recipe fits it to the expert's states).
"""

from __future__ import annotations

import math
from importlib import resources

import numpy as np

from grasprt.bundle import MODEL_SIZE, N_JOINTS
from grasprt.calibration.camera_info import load_camera_info
from grasprt.errors import ConfigError
from grasprt.profiles import RobotProfile
from grasprt.types import Intrinsics

DEFAULT_ACTION_SCALE = 0.05
DEFAULT_RATE_HZ = 10.0
DEFAULT_MASK_THRESHOLD = 0.5
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
SIM_CAMERA_FILE = "wrist_camera.yaml"
_SIM_HFOV_DEG = 80.0  # the paper's ~80 degree field of view


def sim_camera_fallback() -> Intrinsics:
    """The simulator's wrist camera by its definition: 400x400, 80 degrees, centred."""
    f = (MODEL_SIZE / 2) / math.tan(math.radians(_SIM_HFOV_DEG / 2))
    c = (MODEL_SIZE - 1) / 2
    return Intrinsics(MODEL_SIZE, MODEL_SIZE, f, f, c, c)


def as_bundle_camera(intr: Intrinsics, source: str) -> Intrinsics:
    """The camera a bundle can name: the 400x400 model input, no distortion."""
    if (intr.width, intr.height) != (MODEL_SIZE, MODEL_SIZE):
        raise ConfigError(
            f"{source}: camera is {intr.width}x{intr.height}; a bundle's camera is the "
            f"{MODEL_SIZE}x{MODEL_SIZE} model input"
        )
    if intr.dist:
        raise ConfigError(
            f"{source}: camera has distortion; a bundle's camera is an undistorted pinhole "
            "(the runtime's model view removes the real camera's distortion)"
        )
    return Intrinsics(intr.width, intr.height, intr.fx, intr.fy, intr.cx, intr.cy)


def default_camera() -> Intrinsics:
    """The sim's wrist camera: its YAML when the sim ships one, else its definition."""
    try:
        ref = resources.files("grasprt.drivers.sim") / SIM_CAMERA_FILE
        if ref.is_file():
            with resources.as_file(ref) as path:
                return as_bundle_camera(load_camera_info(path), str(path))
    except ModuleNotFoundError:
        pass
    return sim_camera_fallback()


def state_normalisation(profile: RobotProfile) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale), each (8,) float32: the controller sees ``(state - offset) / scale``."""
    lower = np.asarray(profile.lower, dtype=np.float64)
    upper = np.asarray(profile.upper, dtype=np.float64)
    if lower.shape != (N_JOINTS,):
        raise ConfigError(f"robot profile {profile.name!r} has {lower.size} joints, not {N_JOINTS}")
    offset = np.append((lower + upper) / 2, 0.5).astype(np.float32)
    scale = np.append((upper - lower) / 2, 0.5).astype(np.float32)
    return offset, scale
