"""Sim configuration, the default camera file, and inverse kinematics against FK."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grasprt.calibration.camera_info import load_camera_info
from grasprt.drivers.sim import SimConfig, gap_preset
from grasprt.drivers.sim.config import GapConfig, SceneConfig
from grasprt.drivers.sim.factory import DEFAULT_CAMERA_FILE
from grasprt.drivers.sim.ik import ik_residual, solve_ik
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER

KIN = Kinematics(SAWYER)


def test_gap_presets_order_from_ideal_to_harsh() -> None:
    none, default, large = gap_preset("none"), gap_preset("default"), gap_preset("large")
    assert none.latency_s == none.lag_tau_s == none.noise_std == none.bias_std == 0.0
    assert default == GapConfig()
    for name in ("latency_s", "lag_tau_s", "noise_std", "bias_std"):
        assert getattr(none, name) < getattr(default, name) < getattr(large, name)


def test_unknown_gap_preset_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"'huge'.*none, default, large"):
        gap_preset("huge")


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: GapConfig(latency_s=-0.01), r"\[sim gap\] latency_s must be >= 0"),
        (lambda: GapConfig(noise_std=math.nan), r"\[sim gap\] noise_std must be finite"),
        (lambda: GapConfig(speed_ratio=1.5), r"\[sim gap\] speed_ratio must be in \(0, 1\]"),
        (lambda: SceneConfig(workspace=(0.7, 0.5, -0.1, 0.1)), "sim config: workspace"),
        (lambda: SceneConfig(start_height=(0.4, 0.3)), "sim config: start_height"),
        (lambda: SimConfig(clutter=-1), r"\[sim\] clutter must be in \[0, 20\]"),
        (lambda: SimConfig(substep_s=0.0), r"\[sim\] substep_s"),
    ],
)
def test_bad_settings_are_config_errors(build, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        build()


def test_default_camera_file_is_400px_80_degrees_centred() -> None:
    intr = load_camera_info(DEFAULT_CAMERA_FILE)
    assert (intr.width, intr.height) == (400, 400)
    assert intr.hfov_deg() == pytest.approx(80.0, abs=1e-3)
    assert intr.fx == intr.fy
    assert (intr.cx, intr.cy) == (199.5, 199.5)
    assert intr.dist == ()


@pytest.mark.parametrize("frame", ["camera", "fingertips"])
def test_ik_recovers_the_pose_of_random_joint_angles(frame: str) -> None:
    rng = np.random.default_rng(3)
    neutral = np.asarray(SAWYER.neutral)
    for _ in range(10):
        q_true = neutral + rng.uniform(-0.3, 0.3, 7)
        poses = KIN.poses(q_true)
        if frame == "camera":
            pos, fwd = poses.camera[:3, 3], poses.camera[:3, 2]
        else:
            pos, fwd = poses.fingertips, poses.hand[:3, 2]
        q = solve_ik(KIN, neutral, pos, fwd, frame=frame)
        pos_err, angle_err = ik_residual(KIN, q, pos, fwd, frame=frame)
        assert pos_err < 1e-4
        assert angle_err < 1e-3
        assert np.all(q >= np.asarray(SAWYER.lower)) and np.all(q <= np.asarray(SAWYER.upper))


def test_ik_reaches_the_whole_workspace_with_the_hand_down() -> None:
    scene = SceneConfig()
    x0, x1, y0, y1 = scene.workspace
    on_table = scene.table_z + scene.sphere_radius
    q = np.asarray(SAWYER.neutral)
    for x in (x0, x1):
        for y in (y0, y1):
            target = np.array([x, y, on_table])
            q = solve_ik(KIN, q, target, frame="fingertips")
            pos_err, angle_err = ik_residual(KIN, q, target, frame="fingertips")
            assert pos_err < 1e-4 and angle_err < 1e-3
            # Nothing else of the arm is below the fingertips.
            assert KIN.lowest_point_z(q) == pytest.approx(on_table, abs=1e-4)


def test_ik_out_of_reach_stays_within_joint_limits_and_reports_the_miss() -> None:
    target = np.array([2.0, 0.0, 0.0])
    q = solve_ik(KIN, np.asarray(SAWYER.neutral), target, frame="fingertips")
    assert np.all(q >= np.asarray(SAWYER.lower)) and np.all(q <= np.asarray(SAWYER.upper))
    pos_err, _ = ik_residual(KIN, q, target, frame="fingertips")
    assert pos_err > 0.5
