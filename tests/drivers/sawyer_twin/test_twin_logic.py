"""The twin's rules without ROS: robot state, the arm's timeout and speed, faults, poses,
and a grasp through the twin's arm on the simulator's clock (fast, deterministic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grasprt.clock import SimClock
from grasprt.drivers.sawyer_twin.arm import INTERA_DEFAULT_SPEED_RATIO, TwinArm
from grasprt.drivers.sawyer_twin.faults import parse_fault
from grasprt.drivers.sawyer_twin.poses import (
    GRIPPER_TIP,
    pose_error,
    quaternion,
    rotation,
    solve_pose_ik,
    tip_pose,
)
from grasprt.drivers.sawyer_twin.state import (
    ESTOP_BUTTON_PRESSED,
    ESTOP_BUTTON_RELEASED,
    Assembly,
)
from grasprt.drivers.sim.config import SimSettings
from grasprt.drivers.sim.ik import solve_ik
from grasprt.drivers.sim.world import SimWorld
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER


def make_arm(gap: str = "none", enabled: bool = True) -> tuple[TwinArm, SimClock]:
    clock = SimClock()
    world = SimWorld(SimSettings(gap=gap).sim_config(), clock, seed=5)
    return TwinArm(world, lambda: enabled), clock


def reported(arm: TwinArm) -> dict[str, float]:
    return dict(zip(arm.names, arm.world.reported_state().q, strict=True))


# ---- the robot's state ----------------------------------------------------------------------


def test_enable_needs_no_stop_and_estop_needs_release_then_reset() -> None:
    halts: list[int] = []
    a = Assembly(halt=lambda: halts.append(1))
    assert a.request_enable(True) is None and a.can_move()
    a.press_estop()
    s = a.snapshot()
    assert (s.enabled, s.stopped, s.estop_button) == (False, True, ESTOP_BUTTON_PRESSED)
    assert halts == [1]
    assert a.request_enable(True) is not None  # refused while stopped
    assert a.reset() is not None  # refused while the button is down
    a.release_estop()
    assert a.snapshot().estop_button == ESTOP_BUTTON_RELEASED
    assert a.reset() is None
    assert not a.snapshot().stopped and not a.snapshot().enabled
    assert a.request_enable(True) is None and a.can_move()


def test_error_and_stop_disable_until_reset() -> None:
    a = Assembly(halt=lambda: None)
    a.request_enable(True)
    a.raise_error()
    assert a.snapshot().error and a.snapshot().stopped and not a.can_move()
    assert a.request_enable(True) is not None
    assert a.reset() is None and a.request_enable(True) is None
    a.stop()
    assert a.snapshot().stopped and not a.snapshot().enabled
    assert a.reset() is None and not a.snapshot().stopped


# ---- the arm --------------------------------------------------------------------------------


def test_speed_ratio_caps_the_joint_speed() -> None:
    arm, clock = make_arm()
    assert arm.speed_ratio == INTERA_DEFAULT_SPEED_RATIO
    arm.set_speed_ratio(0.1)
    arm.set_command_timeout(10.0)
    q0 = reported(arm)
    assert arm.position_command({"right_j0": q0["right_j0"] + 1.0}) is None
    clock.advance(1.0)
    moved = reported(arm)["right_j0"] - q0["right_j0"]
    assert moved == pytest.approx(SAWYER.joints[0].velocity * 0.1, rel=0.02)


def test_gap_speed_ratio_caps_the_sdks() -> None:
    arm, _ = make_arm(gap="large")  # its arm tops out at 0.2
    assert arm.set_speed_ratio(0.9) == pytest.approx(0.2)
    assert arm.set_speed_ratio(0.05) == pytest.approx(0.05)


def test_command_timeout_holds_where_the_arm_is() -> None:
    arm, clock = make_arm()
    arm.set_speed_ratio(0.2)
    arm.set_command_timeout(0.25)
    q0 = reported(arm)["right_j0"]
    arm.position_command({"right_j0": q0 + 1.0})
    clock.advance(0.2)
    assert not arm.check_timeout()
    clock.advance(0.1)
    assert arm.check_timeout() and arm.timeouts == 1
    held = reported(arm)["right_j0"]
    clock.advance(2.0)
    assert reported(arm)["right_j0"] == pytest.approx(held, abs=1e-12)
    assert 0.05 < held - q0 < 0.2


def test_disabled_arm_refuses_and_non_finite_holds() -> None:
    arm, _ = make_arm(enabled=False)
    assert arm.position_command({"right_j0": 0.0}) == "robot not enabled"
    assert "unknown joints" in str(arm.position_command({"left_j0": 0.0}))
    assert "non-finite" in str(arm.position_command({"right_j0": float("nan")}))


def test_a_grasp_through_the_twin_arm() -> None:
    """Fingertips to the sphere, close, lift: the world's grasp physics behind the twin."""
    arm, clock = make_arm()
    arm.set_speed_ratio(1.0)
    arm.set_command_timeout(100.0)
    w, kin = arm.world, Kinematics(SAWYER)
    sphere = w.sphere_position()
    for dz in (0.05, 0.0):
        q = solve_ik(kin, w.true_q(), sphere + np.array([0.0, 0.0, dz]), frame="fingertips")
        arm.position_command(dict(zip(arm.names, q + w.encoder_bias(), strict=True)))
        clock.advance(3.0)
    arm.set_gripper(True)
    clock.advance(1.0)
    assert w.object_held()
    q = solve_ik(kin, w.true_q(), sphere + np.array([0.0, 0.0, 0.12]), frame="fingertips")
    arm.position_command(dict(zip(arm.names, q + w.encoder_bias(), strict=True)))
    clock.advance(3.0)
    assert w.grasp_succeeded()


# ---- faults and poses -----------------------------------------------------------------------


def test_fault_specs() -> None:
    f = parse_fault("estop@5")
    assert (f.kind, f.at_s) == ("estop", 5.0)
    for bad in ("estop", "estop@x", "estop@-1", "nope@1"):
        with pytest.raises(ConfigError):
            parse_fault(bad)


def test_quaternions_and_pose_ik_round_trip() -> None:
    kin = Kinematics(SAWYER)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = np.array(SAWYER.neutral) + rng.uniform(-0.6, 0.6, 7)
        t = tip_pose(kin, q, GRIPPER_TIP)
        assert np.allclose(rotation(*quaternion(t[:3, :3])), t[:3, :3], atol=1e-9)
        solved = solve_pose_ik(kin, np.array(SAWYER.neutral), t, GRIPPER_TIP)
        assert solved is not None
        dp, dr = pose_error(tip_pose(kin, solved, GRIPPER_TIP), t)
        assert dp < 3e-5 and dr < 3e-4


@pytest.mark.ros
def test_truth_is_json_after_a_grasp() -> None:
    """The world answers numpy booleans once the sphere is lifted; the truth must still
    serialise (it once failed on every tick after a grasp)."""
    from grasprt.drivers.sawyer_twin.episode import truth_of

    arm, clock = make_arm()
    w = arm.world
    w.sphere.attach(w.hand_pose(), np.zeros(3), SAWYER.gripper.fingertip_offset)
    clock.advance(0.1)
    truth = json.loads(json.dumps(truth_of(arm)))
    assert truth["object_held"] is True and isinstance(truth["grasp_succeeded"], bool)


def test_without_rospy_one_line_exit_2() -> None:
    import subprocess
    import sys

    code = "import sys; sys.modules['rospy'] = None; from grasprt.cli import main; main(['twin'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "rospy not found" in lines[0], r.stderr
