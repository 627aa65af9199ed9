"""The Sawyer driver where the twin cannot take it: stand-in ``rospy`` /
``intera_interface`` modules that hang, raise or report what no twin does, plus pure
checks of settings and mappings.

Everything the real SDK can show over ROS (connect's settings, name mapping, stamps,
commands, the gripper, e-stop, hold, disconnect, bad commands, another limb, an
external gripper) is tested against `grasprt twin` in
tests/drivers/sawyer_ros/test_sawyer_driver.py. Each test here says why it is not there.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from polling import wait_until

from grasprt.clock import SimClock
from grasprt.drivers.sawyer import (
    INTERA_GRIPPER_OPEN_M,
    InteraSdk,
    SawyerRobot,
    fault_from_assembly_state,
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
    gripper_error: bool = False
    calibrated: bool = False
    calibration_works: bool = True
    commands: list[dict[str, float]] = field(default_factory=list)
    gripper_calls: list[str] = field(default_factory=list)
    command_error: Exception | None = None
    gripper_command_error: Exception | None = None
    enable_error: Exception | None = None
    enable_sticks: bool = True
    no_gripper: bool = False
    limb_joints: list[str] | None = None  # what Limb.joint_names() reports, if not these
    block_commands: threading.Event | None = None
    in_command: threading.Event = field(default_factory=threading.Event)


def standin_sdk(robot: StandInRobot) -> InteraSdk:
    rospy = types.ModuleType("rospy")
    rospy.init_node = lambda name, **kwargs: None  # type: ignore[attr-defined]

    ii = types.ModuleType("intera_interface")

    class RobotEnable:
        def __init__(self, versioned: bool = False) -> None:
            pass

        def state(self) -> AssemblyState:
            return robot.assembly

        def enable(self) -> None:
            if robot.enable_error is not None:
                raise robot.enable_error
            robot.assembly.enabled = robot.enable_sticks

        def disable(self) -> None:
            robot.assembly.enabled = False

    class Limb:
        def __init__(self, limb: str = "right") -> None:
            self.name = limb

        def joint_names(self) -> list[str]:
            if robot.limb_joints is not None:
                return list(robot.limb_joints)
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
            pass

        def set_command_timeout(self, timeout: float) -> None:
            pass

    class Gripper:
        def __init__(self, ee_name: str = "right_gripper", calibrate: bool = True) -> None:
            if robot.no_gripper:
                raise OSError("Failed to get gripper. No gripper attached on the robot.")
            if calibrate and not robot.calibrated:
                self.calibrate()

        def is_calibrated(self) -> bool:
            return robot.calibrated

        def calibrate(self) -> None:
            robot.gripper_calls.append("calibrate")
            robot.calibrated = robot.calibration_works

        def _command(self, what: str) -> None:
            if robot.gripper_command_error is not None:
                raise robot.gripper_command_error
            robot.gripper_calls.append(what)

        def open(self) -> None:
            self._command("open")

        def close(self) -> None:
            self._command("close")

        def get_position(self) -> float:
            return robot.gripper_m

        def is_gripping(self) -> bool:
            return False

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


def measured(standin: StandInRobot) -> dict[str, float]:
    return {n: standin.angles[n] for n in SAWYER.joint_names}


# ---- what no twin does: SDK calls that hang or raise ------------------------------------


def test_hold_from_another_thread_while_a_command_is_stuck(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    # Why a stand-in: a publish stuck inside the SDK cannot be made to happen on demand.
    release = threading.Event()
    standin.block_commands = release
    loop = threading.Thread(target=sawyer.command, args=(cmd(np.array(SAWYER.neutral)),))
    loop.start()
    assert standin.in_command.wait(timeout=5.0)
    watchdog = threading.Thread(target=sawyer.hold)
    t0 = time.monotonic()
    watchdog.start()
    watchdog.join(timeout=5.0)
    assert not watchdog.is_alive()  # hold() does not wait forever behind the stuck command
    assert time.monotonic() - t0 < 1.0  # its lock wait is bounded (50 ms by default)
    assert standin.commands == [measured(standin)]  # it published while the other is stuck
    release.set()
    loop.join(timeout=5.0)
    assert len(standin.commands) == 2


def test_sdk_exception_in_command_is_raised_and_hold_swallows_it(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    # Why a stand-in: the real set_joint_positions only raises on a broken publisher.
    standin.command_error = RuntimeError("publisher closed")
    with pytest.raises(RuntimeError, match="publisher closed"):
        sawyer.command(cmd(np.array(SAWYER.neutral)))
    sawyer.hold()  # never raises: the command timeout is the backstop
    standin.command_error = None
    sawyer.hold()
    assert standin.commands == [measured(standin)]  # and works again once the SDK does


def test_joint_missing_from_joint_states_reads_nan_and_hold_sends_nothing(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    # Why a stand-in: the twin always publishes every joint.
    del standin.angles["right_j4"]
    q = sawyer.read_state().q
    assert np.isnan(q[4]) and np.isfinite(np.delete(q, 4)).all()
    sawyer.hold()  # no complete state to hold: nothing is sent, the command timeout holds
    assert standin.commands == []


# ---- the gripper: what the twin cannot count or produce ---------------------------------


def test_gripper_sdk_called_only_on_change(sawyer: SawyerRobot, standin: StandInRobot) -> None:
    # Why a stand-in: the twin sees an SDK gripper call only as IO messages re-sent until acked.
    q = np.array(SAWYER.neutral)
    expected = ["calibrate"]
    for closed in (False, True, True, True, False, False):
        sawyer.command(cmd(q, closed))
        if len(expected) == 1 or (expected[-1] == "close") != closed:
            expected.append("close" if closed else "open")
        # GripperWorker carries the call out on its own thread: wait for it.
        n = len(expected)
        assert wait_until(lambda n=n: len(standin.gripper_calls) >= n)
        time.sleep(0.02)  # room for a call that should not come
    assert standin.gripper_calls == ["calibrate", "open", "close", "open"]
    assert len(standin.commands) == 6


def test_gripper_command_failure_becomes_a_fault(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    # Why a stand-in: the twin always acknowledges the gripper's IO commands.
    standin.gripper_command_error = OSError("Timed out waiting for command acknowledgement")
    sawyer.command(cmd(np.array(SAWYER.neutral), closed=True))  # returns: the worker fails
    assert wait_until(lambda: sawyer.read_state().fault is not None)
    fault = sawyer.read_state().fault or ""
    assert fault.startswith("Intera gripper command failed") and "acknowledgement" in fault


def test_gripper_error_is_a_fault_and_openings_map_to_closed_fractions(
    sawyer: SawyerRobot, standin: StandInRobot
) -> None:
    # Why a stand-in: the twin's gripper never has_error nor stops at a chosen opening.
    for opening, closed in ((1.0, 0.0), (0.0, 1.0), (0.25, 0.75), (0.5, 0.5)):
        standin.gripper_m = opening * INTERA_GRIPPER_OPEN_M
        assert sawyer.read_state().gripper == pytest.approx(closed)
    standin.gripper_m = 2 * INTERA_GRIPPER_OPEN_M  # past the travel: clipped
    assert sawyer.read_state().gripper == 0.0
    assert sawyer.read_state().fault is None
    standin.gripper_error = True
    assert sawyer.read_state().fault == "Intera gripper reports an error"


# ---- connect failures the twin cannot produce ---------------------------------------------


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda s: setattr(s, "limb_joints", ["right_j1"]), "has no joints right_j0, right_j2"),
        (lambda s: setattr(s, "enable_error", OSError("Failed to enable")), "could not enable"),
        (lambda s: setattr(s, "enable_sticks", False), "did not report enabled"),
        (lambda s: setattr(s, "no_gripper", True), "no Intera gripper 'right_gripper'"),
        (lambda s: setattr(s, "calibration_works", False), "failed to calibrate"),
    ],
    ids=["limb-joints", "enable-raises", "enable-ignored", "no-gripper", "calibration"],
)
def test_connect_failure_is_a_one_line_driver_error(
    standin: StandInRobot, breakage: Callable[[StandInRobot], None], message: str
) -> None:
    # Why stand-ins: the twin's limb has every joint, it enables, its gripper calibrates.
    breakage(standin)
    robot = SawyerRobot(intera=standin_sdk(standin))
    with pytest.raises(DriverError, match=message) as info:
        robot.connect()
    assert "\n" not in str(info.value)
    # Half a connection commands nothing: what connect set up before it failed is gone.
    with pytest.raises(DriverError, match="not connected"):
        robot.read_state()


# ---- pure checks ----------------------------------------------------------------------------


def test_fault_from_assembly_state() -> None:
    # Why pure: the twin cannot send no state, nor an error without a stop (a non-fatal one).
    assert fault_from_assembly_state(None) == "no robot state received from /robot/state"
    assert fault_from_assembly_state(AssemblyState(enabled=True)) is None
    assert "e-stop button pressed" in (
        fault_from_assembly_state(AssemblyState(stopped=True, estop_button=1)) or ""
    )
    assert fault_from_assembly_state(AssemblyState(stopped=True, estop_source=4)) == (
        "Sawyer stopped (e-stop source 4)"
    )
    assert "error state" in (fault_from_assembly_state(AssemblyState(error=True)) or "")
    # An error stops the robot too (the twin reports both, as the SDK needs to reset it):
    # the error is the reason, not the stop.
    both = AssemblyState(error=True, stopped=True, estop_source=3)
    assert "error state" in (fault_from_assembly_state(both) or "")
    assert fault_from_assembly_state(AssemblyState()) == "Sawyer not enabled"


def test_bad_settings_are_config_errors() -> None:
    # Why here: a settings check, before anything connects.
    assert isinstance(SawyerRobot(), Robot)
    with pytest.raises(ConfigError):
        SawyerRobot(speed_ratio=0.0)
    with pytest.raises(ConfigError):
        SawyerRobot(command_timeout_s=5.0)


def test_importing_the_driver_imports_no_ros() -> None:
    # Why a subprocess: this test process may have rospy loaded already.
    code = (
        "import sys\n"
        "from grasprt.drivers.sawyer import SawyerRobot\n"
        "SawyerRobot()\n"
        "loaded = [m for m in ('rospy', 'intera_interface', 'sensor_msgs') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
