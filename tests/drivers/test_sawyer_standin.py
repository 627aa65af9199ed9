"""The Sawyer driver against STAND-IN ``rospy`` / ``intera_interface`` modules.

No ROS master or Sawyer can run here, so these modules are written below to the
shape of intera_sdk's public API (RobotEnable, Limb, Gripper); every test name says
"standin". What this leaves unverified is listed in docs/sawyer.md.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from grasprt.clock import SimClock
from grasprt.drivers.sawyer import (
    INTERA_GRIPPER_OPEN_M,
    INTERA_MISSING,
    InteraSdk,
    SawyerRobot,
)
from grasprt.errors import ConfigError, DriverError
from grasprt.profiles import SAWYER
from grasprt.types import JointCommand, Robot

# The robot publishes joints in its own order, with the head joint mixed in.
ROBOT_ORDER = ("head_pan", "right_j6", "right_j0", "right_j3", "right_j1", "right_j5")
ROBOT_ORDER += ("right_j2", "right_j4")


@dataclass
class AssemblyState:
    enabled: bool = False
    stopped: bool = False
    error: bool = False
    estop_button: int = 0
    estop_source: int = 0


@dataclass
class StandInRobot:
    """What the stand-in SDK talks to: the state a real robot would hold."""

    angles: dict[str, float] = field(
        default_factory=lambda: {n: 0.1 * i - 0.3 for i, n in enumerate(ROBOT_ORDER)}
    )
    assembly: AssemblyState = field(default_factory=AssemblyState)
    gripper_m: float = INTERA_GRIPPER_OPEN_M
    gripping: bool = False
    gripper_error: bool = False
    calibrated: bool = False
    commands: list[dict[str, float]] = field(default_factory=list)
    speed_ratio: float | None = None
    command_timeout: float | None = None
    gripper_calls: list[str] = field(default_factory=list)
    init_node: dict[str, Any] = field(default_factory=dict)
    command_error: Exception | None = None
    block_commands: threading.Event | None = None
    in_command: threading.Event = field(default_factory=threading.Event)


def standin_sdk(robot: StandInRobot) -> InteraSdk:
    rospy = types.ModuleType("rospy")

    def init_node(name: str, **kwargs: Any) -> None:
        robot.init_node = {"name": name, **kwargs}

    rospy.init_node = init_node  # type: ignore[attr-defined]

    ii = types.ModuleType("intera_interface")

    class RobotEnable:
        def __init__(self, versioned: bool = False) -> None:
            pass

        def state(self) -> AssemblyState:
            return robot.assembly

        def enable(self) -> None:
            if robot.assembly.estop_button == 1:
                raise OSError("Failed to Reset: E-Stop Engaged")
            robot.assembly.enabled = True

        def disable(self) -> None:
            robot.assembly.enabled = False

    class Limb:
        def __init__(self, limb: str = "right") -> None:
            self.name = limb

        def joint_names(self) -> list[str]:
            return [n for n in ROBOT_ORDER if n.startswith(self.name)]

        def joint_angles(self) -> dict[str, float]:
            return dict(robot.angles)

        def set_joint_positions(self, positions: dict[str, float]) -> None:
            # Only the first call after block_commands is set gets stuck (one hung publish).
            stuck, robot.block_commands = robot.block_commands, None
            robot.in_command.set()
            if stuck is not None:
                stuck.wait(timeout=5.0)
            if robot.command_error is not None:
                raise robot.command_error
            robot.commands.append(dict(positions))

        def set_joint_position_speed(self, speed: float = 0.3) -> None:
            robot.speed_ratio = speed

        def set_command_timeout(self, timeout: float) -> None:
            robot.command_timeout = timeout

    class Gripper:
        MAX_POSITION = INTERA_GRIPPER_OPEN_M

        def __init__(self, ee_name: str = "right_gripper", calibrate: bool = True) -> None:
            if calibrate and not robot.calibrated:
                self.calibrate()

        def is_calibrated(self) -> bool:
            return robot.calibrated

        def calibrate(self) -> None:
            robot.gripper_calls.append("calibrate")
            robot.calibrated = True

        def open(self) -> None:
            robot.gripper_calls.append("open")

        def close(self) -> None:
            robot.gripper_calls.append("close")

        def get_position(self) -> float:
            return robot.gripper_m

        def is_gripping(self) -> bool:
            return robot.gripping

        def has_error(self) -> bool:
            return robot.gripper_error

    ii.RobotEnable = RobotEnable  # type: ignore[attr-defined]
    ii.Limb = Limb  # type: ignore[attr-defined]
    ii.Gripper = Gripper  # type: ignore[attr-defined]
    return InteraSdk(rospy=rospy, intera_interface=ii)


@pytest.fixture
def standin() -> StandInRobot:
    return StandInRobot()


@pytest.fixture
def sawyer(standin: StandInRobot) -> Iterator[SawyerRobot]:
    robot = SawyerRobot(clock=SimClock(12.5), intera=standin_sdk(standin))
    robot.connect()
    yield robot
    robot.disconnect()


def cmd(q: np.ndarray, closed: bool = False) -> JointCommand:
    return JointCommand(q=q, gripper_closed=closed, stamp=0.0)


def test_standin_intera_connect_enables_and_sets_speed_ratio_and_command_timeout(
    standin: StandInRobot,
) -> None:
    robot = SawyerRobot(speed_ratio=0.15, command_timeout_s=0.3, intera=standin_sdk(standin))
    assert isinstance(robot, Robot)
    robot.connect()
    assert standin.assembly.enabled
    assert standin.speed_ratio == 0.15
    assert standin.command_timeout == 0.3
    # grasprt owns SIGINT (so it can hold the arm first); rospy must not take it.
    assert standin.init_node["disable_signals"] is True
    assert standin.init_node["anonymous"] is True
    assert standin.gripper_calls == ["calibrate"]


def test_standin_intera_maps_joint_names_into_profile_order(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    state = sawyer.read_state()
    expected = [standin.angles[n] for n in SAWYER.joint_names]
    np.testing.assert_array_equal(state.q, expected)
    assert state.stamp == 12.5
    assert state.enabled and state.fault is None


def test_standin_intera_commands_radians_by_name(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    q = np.array([0.1, -1.0, 0.2, 2.0, -0.3, 0.5, 3.0])
    sawyer.command(cmd(q))
    sent = standin.commands[-1]
    assert set(sent) == set(SAWYER.joint_names)
    assert [sent[n] for n in SAWYER.joint_names] == q.tolist()  # radians, unchanged


def test_standin_intera_gripper_metres_normalised_to_closed_fraction(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    standin.gripper_m = INTERA_GRIPPER_OPEN_M
    assert sawyer.read_state().gripper == pytest.approx(0.0)
    standin.gripper_m = 0.0
    assert sawyer.read_state().gripper == pytest.approx(1.0)
    standin.gripper_m = INTERA_GRIPPER_OPEN_M / 4
    assert sawyer.read_state().gripper == pytest.approx(0.75)
    standin.gripping = True
    assert sawyer.read_state().object_held is True
    standin.gripper_error = True
    assert "gripper" in (sawyer.read_state().fault or "")


def test_standin_intera_gripper_commanded_only_on_change(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    q = np.array(SAWYER.neutral)
    for closed in (False, True, True, True, False, False):
        sawyer.command(cmd(q, closed))
    assert standin.gripper_calls == ["calibrate", "open", "close", "open"]
    assert len(standin.commands) == 6


def test_standin_intera_estop_is_a_fault_every_cycle(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    assert sawyer.read_state().fault is None
    standin.assembly.estop_button = 1
    standin.assembly.stopped = True
    standin.assembly.enabled = False
    state = sawyer.read_state()
    assert state.fault is not None and "e-stop" in state.fault
    assert state.enabled is False
    standin.assembly.estop_button = 0
    assert "stopped" in (sawyer.read_state().fault or "")
    standin.assembly.stopped = False
    standin.assembly.error = True
    assert "error" in (sawyer.read_state().fault or "")


def test_standin_intera_estop_pressed_at_connect_is_driver_error(standin: StandInRobot) -> None:
    standin.assembly.estop_button = 1
    robot = SawyerRobot(intera=standin_sdk(standin))
    with pytest.raises(DriverError, match="e-stop is pressed") as info:
        robot.connect()
    assert "\n" not in str(info.value)


def test_standin_intera_hold_commands_measured_angles(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    sawyer.command(cmd(np.array(SAWYER.neutral)))
    sawyer.hold()
    held = standin.commands[-1]
    assert held == {n: standin.angles[n] for n in SAWYER.joint_names}


def test_standin_intera_disconnect_holds_and_stays_enabled(standin: StandInRobot) -> None:
    robot = SawyerRobot(intera=standin_sdk(standin))
    robot.connect()
    robot.disconnect()
    assert standin.commands[-1] == {n: standin.angles[n] for n in SAWYER.joint_names}
    assert standin.assembly.enabled


def test_standin_intera_disconnect_disables_when_asked(standin: StandInRobot) -> None:
    robot = SawyerRobot(intera=standin_sdk(standin), disable_on_disconnect=True)
    robot.connect()
    robot.disconnect()
    assert len(standin.commands) == 1  # the hold, before disabling
    assert not standin.assembly.enabled


def test_standin_intera_hold_from_another_thread_while_a_command_is_stuck(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    release = threading.Event()
    standin.block_commands = release
    loop = threading.Thread(target=sawyer.command, args=(cmd(np.array(SAWYER.neutral)),))
    loop.start()
    assert standin.in_command.wait(timeout=5.0)
    watchdog = threading.Thread(target=sawyer.hold)
    watchdog.start()
    watchdog.join(timeout=5.0)
    assert not watchdog.is_alive()  # hold() does not wait forever behind the stuck command
    release.set()
    loop.join(timeout=5.0)
    assert {n: standin.angles[n] for n in SAWYER.joint_names} in standin.commands


def test_standin_intera_sdk_exception_in_command_is_raised(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    standin.command_error = RuntimeError("publisher closed")
    with pytest.raises(RuntimeError, match="publisher closed"):
        sawyer.command(cmd(np.array(SAWYER.neutral)))
    sawyer.hold()  # and hold() swallows it: the command timeout is the backstop


def test_standin_intera_non_finite_command_is_refused(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    q = np.array(SAWYER.neutral)
    q[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        sawyer.command(cmd(q))
    with pytest.raises(ValueError):
        sawyer.command(cmd(np.zeros(6)))
    assert standin.commands == []


def test_standin_intera_missing_joint_state_reads_as_nan(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    del standin.angles["right_j4"]
    q = sawyer.read_state().q
    assert np.isnan(q[4]) and np.isfinite(np.delete(q, 4)).all()


def test_standin_intera_wrong_limb_joints_is_driver_error(standin: StandInRobot) -> None:
    robot = SawyerRobot(intera=standin_sdk(standin), limb_name="left")
    with pytest.raises(DriverError, match="has no joints right_j0") as info:
        robot.connect()
    assert "\n" not in str(info.value)


def test_standin_intera_external_gripper_mode_skips_the_intera_gripper(
    standin: StandInRobot,
) -> None:
    robot = SawyerRobot(intera=standin_sdk(standin), use_gripper=False)
    robot.connect()
    robot.command(cmd(np.array(SAWYER.neutral), closed=True))
    assert standin.gripper_calls == []
    assert robot.read_state().object_held is None


def test_standin_intera_modules_imported_only_at_connect(
    standin: StandInRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = standin_sdk(standin)
    monkeypatch.delitem(sys.modules, "rospy", raising=False)
    monkeypatch.delitem(sys.modules, "intera_interface", raising=False)
    robot = SawyerRobot()  # builds without ROS anywhere
    monkeypatch.setitem(sys.modules, "rospy", sdk.rospy)
    monkeypatch.setitem(sys.modules, "intera_interface", sdk.intera_interface)
    robot.connect()
    assert standin.assembly.enabled


def test_standin_missing_intera_sdk_is_one_line_driver_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry makes `import intera_interface` fail as on a PC without the SDK.
    monkeypatch.setitem(sys.modules, "intera_interface", None)
    with pytest.raises(DriverError) as info:
        SawyerRobot().connect()
    assert str(info.value) == INTERA_MISSING
    assert "\n" not in str(info.value)


def test_standin_intera_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        SawyerRobot(speed_ratio=0.0)
    with pytest.raises(ConfigError):
        SawyerRobot(command_timeout_s=5.0)
