"""The simulator's mis-mounted camera and its calibration board; the model view's
mount correction, checked on the sim's own renders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from grasprt.calibration.boards import parse_board
from grasprt.calibration.model_view import ModelView
from grasprt.clock import SimClock
from grasprt.drivers.sim.config import SimSettings
from grasprt.drivers.sim.factory import make_sim
from grasprt.errors import ConfigError
from grasprt.kinematics import rpy_matrix, transform

RPY = (0.0302, -0.0302, 0.0302)  # 3.0 degrees


def render(seed: int = 3, **sim: object) -> tuple[object, np.ndarray]:
    world, _robot, camera = make_sim(SimSettings(gap="none", **sim).sim_config(), SimClock(), seed)
    camera.renderer.noise_std = 0.0
    return world, camera


def test_mount_error_moves_the_true_camera_only() -> None:
    xyz = (0.004, -0.004, 0.005657)
    good, _ = render()
    bad, _ = render(camera_mount_error={"xyz": list(xyz), "rpy": list(RPY)})
    assert np.allclose(bad.camera_pose(), good.camera_pose() @ transform(xyz, RPY))
    assert np.allclose(bad.true_q(), good.true_q())  # same start pose: the arm is not moved
    assert np.allclose(bad.snapshot().camera_pose, bad.camera_pose())


def test_model_view_undoes_the_mount_rotation() -> None:
    _, cam_good = render()
    _, cam_bad = render(camera_mount_error={"rpy": list(RPY)})
    good = cam_good.capture().image.astype(np.float32)
    bad = cam_bad.capture().image
    intr = cam_bad.intrinsics
    view = ModelView(intr, intr, rotation=rpy_matrix(*RPY), min_coverage=0)
    assert not view.identity and 0.85 < view.coverage < 0.99
    assert "turned 3.01 deg for the camera's mount" in view.describe()
    fixed = view.apply(bad).astype(np.float32)
    seen = np.all(fixed != view.fill, axis=2)
    raw_err = np.abs(bad.astype(np.float32) - good)[seen].mean()
    fixed_err = np.abs(fixed - good)[seen].mean()
    # Uncorrected, a 3 degree turn moves every pixel ~12 px; corrected, only the
    # bilinear resampling is left.
    assert raw_err > 8.0 and fixed_err < 1.0, (raw_err, fixed_err)
    # The inverse turn makes it worse: the direction of the correction is right.
    wrong = ModelView(intr, intr, rotation=rpy_matrix(*RPY).T, min_coverage=0)
    assert np.abs(wrong.apply(bad).astype(np.float32) - good)[seen].mean() > raw_err


def test_board_on_the_table_is_detected() -> None:
    spec = {"spec": "charuco:7x5", "square": 0.04, "marker": 0.03}
    _, camera = render(board=spec)
    gray = cv2.cvtColor(camera.capture().image, cv2.COLOR_RGB2GRAY)
    det = parse_board("charuco:7x5", 0.04, marker=0.03).detect(gray)
    assert det is not None and len(det.image_points) >= 20
    _, plain = render()
    plain_gray = cv2.cvtColor(plain.capture().image, cv2.COLOR_RGB2GRAY)
    assert parse_board("charuco:7x5", 0.04, marker=0.03).detect(plain_gray) is None


@pytest.mark.parametrize(
    ("sim", "message"),
    [
        ({"camera_mount_error": [0, 0, 0]}, "must be a table"),
        ({"camera_mount_error": {"xyz": [0, 0]}}, r"xyz \(metres\) must be 3 numbers"),
        ({"camera_mount_error": {"rot": [0, 0, 0]}}, "unknown key 'rot'"),
        ({"camera_mount_error": {"rpy": [1.0, 0, 0]}}, "over 0.5 rad"),
        ({"board": {"spec": "charuco:7x5", "size": 1}}, "unknown key 'size'"),
    ],
)
def test_bad_sim_settings(sim: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SimSettings(**sim)
