"""grasprt's Sawyer driver (drivers/sawyer.py) over the REAL Intera SDK and real ROS,
against `grasprt twin --robot sawyer` (marked ``ros``).

This process's one rospy node is the session's (tests/conftest.py `ros_node`); one twin
serves the module, with `--gap none` (no latency, noise or encoder offset), so angles
can be compared exactly. Every test connects its own `SawyerRobot()` on the real path
(`intera=None`: ensure_node, TopicClock on /robot/joint_states, MasterWatch, the
GripperWorker) and disconnects it. Faults go in on /grasprt_twin/fault; after each test
the robot is put back (clear, reset, enable) so the next one starts clean.

What the twin cannot reach (an SDK call that hangs or raises, a joint missing from the
joint states, counting the SDK's gripper calls) stays in tests/drivers/
test_sawyer_sdk_faults.py. The master watch needs the session's master to die: it is
tested at process level elsewhere.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from polling import wait_until
from twin_support import TwinProcess, start_twin
from twin_support import log_lines as twin_log_lines

from grasprt.drivers.sawyer import INTERA_GRIPPER_OPEN_M, SawyerRobot
from grasprt.errors import DriverError
from grasprt.profiles import SAWYER
from grasprt.types import JointCommand

pytestmark = pytest.mark.ros

NAMES = SAWYER.joint_names
LIMB_NS = "/robot/limb/right/"
GRIPPER_NS = "/io/end_effector/right_gripper/"
FAULT_TOPIC = "/grasprt_twin/fault"
VERSION_PARAM = "/manifest/robot_software/version/HLR_VERSION_STRING"
# The driver's own threads (drivers/gripper_worker.py, drivers/ros_watch.py).
DRIVER_THREADS = ("intera-gripper-worker", "ros-master-watch")
# A pose with a different angle on every joint, so a mix-up of names cannot go unseen
# (the twin also publishes head_pan and torso_t0 at 0.0).
DISTINCT = np.array(SAWYER.neutral) + np.array([0.11, 0.07, -0.13, -0.05, 0.17, 0.09, -0.19])


# ---- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def twin(
    ros_node: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TwinProcess]:
    tmp = tmp_path_factory.mktemp("sawyer_driver_twin")
    proc = start_twin(ros_node, tmp, "--robot", "sawyer", "--gap", "none", "--seed", "3")
    yield proc
    rc = proc.stop()
    assert rc == 0, proc.text()
    assert "Traceback" not in proc.text(), proc.text()


@pytest.fixture(scope="module")
def rospy(twin: TwinProcess) -> Any:
    import rospy as rp

    return rp


@pytest.fixture(scope="module")
def sdk(rospy: Any) -> Any:
    import intera_interface

    return intera_interface


@pytest.fixture(scope="module")
def fault_pub(rospy: Any) -> Any:
    from std_msgs.msg import String

    # Latched: a twin that (re)connects gets the last one; "clear" is always the last.
    pub = rospy.Publisher(FAULT_TOPIC, String, queue_size=10, latch=True)
    assert wait_until(lambda: pub.get_num_connections() > 0, 5.0), "the twin never subscribed"
    return pub


@pytest.fixture(scope="module")
def enabler(sdk: Any) -> Any:
    return sdk.RobotEnable(versioned=True)


@pytest.fixture(autouse=True)
def clean_robot(twin: TwinProcess, rospy: Any, enabler: Any, fault_pub: Any) -> Iterator[None]:
    """Every test starts and leaves the robot enabled, unfaulted, publishing, at rest,
    and the driver's threads gone."""
    recover(rospy, enabler, fault_pub)
    before = set(driver_threads())
    yield
    recover(rospy, enabler, fault_pub)
    left = [t for t in driver_threads() if t not in before]
    assert left == [], f"driver threads left behind: {left}"


def driver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(DRIVER_THREADS)]


def recover(rospy: Any, enabler: Any, fault_pub: Any) -> None:
    from sensor_msgs.msg import JointState

    fault(fault_pub, "clear")
    assert wait_until(lambda: enabler.state().estop_button != 1, 3.0)
    if enabler.state().stopped:
        enabler.reset()
    enabler.enable()
    assert enabler.state().enabled

    def at_rest() -> bool:  # the twin holds 0.25 s after the last command at the latest
        a = rospy.wait_for_message("/robot/joint_states", JointState, timeout=3.0)
        time.sleep(0.05)
        b = rospy.wait_for_message("/robot/joint_states", JointState, timeout=3.0)
        return a.position == b.position

    assert wait_until(at_rest, 3.0), "the arm did not come to rest"


def fault(pub: Any, kind: str) -> None:
    from std_msgs.msg import String

    pub.publish(String(kind))


@pytest.fixture
def robot(twin: TwinProcess) -> Iterator[SawyerRobot]:
    r = SawyerRobot()
    r.connect()
    try:
        yield r
    finally:
        r.disconnect()


def cmd(q: np.ndarray, closed: bool = False) -> JointCommand:
    return JointCommand(q=np.asarray(q, dtype=np.float64), gripper_closed=closed, stamp=0.0)


def log_lines(twin: TwinProcess) -> list[dict[str, Any]]:
    """The joint commands in the twin's --log (it also logs faults and its own holds)."""
    return [r for r in twin_log_lines(twin) if "names" in r]


def by_name(line: dict[str, Any]) -> np.ndarray:
    """A logged command's positions in the profile's order (NaN for a joint left out)."""
    sent = dict(zip(line["names"], line["positions"], strict=True))
    return np.array([sent.get(n, np.nan) for n in NAMES])


def move_to(robot: SawyerRobot, target: np.ndarray, timeout_s: float = 5.0) -> None:
    """Command `target` at 20 Hz (inside the 0.25 s command timeout) until the arm is there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        robot.command(cmd(target))
        if np.max(np.abs(robot.read_state().q - target)) < 1e-6:
            return
        time.sleep(0.05)
    raise AssertionError(f"the arm did not reach {target}: at {robot.read_state().q}")


def gripper_device_m(rospy: Any) -> float:
    """The twin's own gripper position (metres between the fingers), from its IO state."""
    from intera_core_msgs.msg import IODeviceStatus

    msg = rospy.wait_for_message(GRIPPER_NS + "state", IODeviceStatus, timeout=3.0)
    signals = {s.name: json.loads(s.data)[0] for s in msg.signals}
    return float(signals["position_response_m"])


class Recorder:
    """Every message on a topic from now on (this process's own publishers included)."""

    def __init__(self, rospy: Any, topic: str, msg_type: type) -> None:
        self.got: list[Any] = []
        self._sub = rospy.Subscriber(topic, msg_type, self.got.append, queue_size=100)

    def close(self) -> None:
        self._sub.unregister()


def one_line(err: pytest.ExceptionInfo[DriverError]) -> str:
    text = str(err.value)
    assert text and "\n" not in text, repr(text)
    return text


# ---- 1. connect ---------------------------------------------------------------------------


def test_connect_enables_and_publishes_speed_ratio_and_command_timeout(
    rospy: Any, enabler: Any
) -> None:
    from std_msgs.msg import Float64

    # Other values latched first: what is read afterwards can only come from connect().
    speed = rospy.Publisher(LIMB_NS + "set_speed_ratio", Float64, queue_size=10, latch=True)
    timeout = rospy.Publisher(LIMB_NS + "joint_command_timeout", Float64, queue_size=10, latch=True)
    speed.publish(Float64(0.9))
    timeout.publish(Float64(0.9))
    latched = rospy.wait_for_message(LIMB_NS + "set_speed_ratio", Float64, timeout=3.0)
    assert latched.data == pytest.approx(0.9)
    enabler.disable()
    assert not enabler.state().enabled

    robot = SawyerRobot()
    robot.connect()
    try:
        assert enabler.state().enabled
        ratio = rospy.wait_for_message(LIMB_NS + "set_speed_ratio", Float64, timeout=3.0)
        limit = rospy.wait_for_message(LIMB_NS + "joint_command_timeout", Float64, timeout=3.0)
        assert ratio.data == pytest.approx(0.2)
        assert limit.data == pytest.approx(0.25)
        state = robot.read_state()
        assert state.enabled and state.fault is None
    finally:
        robot.disconnect()


# ---- 2. joint states ----------------------------------------------------------------------


def test_read_state_maps_joint_states_by_name_into_profile_order(
    robot: SawyerRobot, rospy: Any
) -> None:
    from sensor_msgs.msg import JointState

    move_to(robot, DISTINCT)
    time.sleep(0.3)  # past the command timeout: the arm holds still
    msg = rospy.wait_for_message("/robot/joint_states", JointState, timeout=3.0)
    assert msg.name[0] == "head_pan" and "torso_t0" in msg.name  # not the profile's order
    published = dict(zip(msg.name, msg.position, strict=True))
    expected = np.array([published[n] for n in NAMES])
    q = robot.read_state().q
    np.testing.assert_allclose(q, expected, atol=1e-9)
    np.testing.assert_allclose(q, DISTINCT, atol=1e-6)
    assert not np.allclose(q, msg.position[:7], atol=1e-3)  # taken by position, it differs


def test_read_state_stamp_is_when_the_joint_states_arrived(
    robot: SawyerRobot, fault_pub: Any
) -> None:
    state = robot.read_state()
    age = time.monotonic() - state.stamp
    assert 0.0 <= age < 0.1, f"stamp {age:.3f} s old while joint states flow at 100 Hz"

    before = time.monotonic()
    fault(fault_pub, "stop_joint_states")
    assert wait_until(lambda: time.monotonic() - robot.read_state().stamp > 0.1, 3.0)
    frozen = robot.read_state().stamp
    assert before - 0.1 < frozen < before + 1.0  # the last arrival, around the fault
    t0 = time.monotonic()
    time.sleep(0.3)
    assert robot.read_state().stamp == frozen  # no arrival, no new stamp...
    assert time.monotonic() - t0 >= 0.3  # ...while the monotonic clock went on
    assert robot.read_state().q.shape == (7,)  # the angles are still there: only stale

    fault(fault_pub, "clear")
    assert wait_until(lambda: robot.read_state().stamp > frozen, 3.0)
    assert time.monotonic() - robot.read_state().stamp < 0.1


# ---- 3. commands --------------------------------------------------------------------------


def test_command_sends_radians_by_name_in_position_mode_and_the_arm_follows(
    robot: SawyerRobot, twin: TwinProcess
) -> None:
    start = robot.read_state().q
    target = start + np.array([0.05, 0.0, -0.04, 0.0, 0.03, 0.0, -0.06])
    n = len(log_lines(twin))
    for _ in range(12):  # 10 Hz, as the loop sends them
        robot.command(cmd(target))
        time.sleep(0.1)
    lines = log_lines(twin)[n:]
    assert len(lines) >= 10
    last = lines[-1]
    assert last["mode"] == 1  # intera_core_msgs/JointCommand.POSITION_MODE
    assert last["names"] == list(NAMES) and last["accepted"], last
    assert by_name(last).tolist() == target.tolist()  # radians, unchanged, by name
    q = robot.read_state().q
    np.testing.assert_allclose(q, target, atol=1e-3)
    assert np.max(np.abs(q - start)) > 0.05


# ---- 4. the gripper -----------------------------------------------------------------------


def test_gripper_command_returns_at_once_and_the_gripper_follows(robot: SawyerRobot) -> None:
    q = robot.read_state().q
    robot.command(cmd(q, closed=False))
    assert wait_until(lambda: robot.read_state().gripper < 0.01, 3.0)
    # Intera's close() blocks until the twin acks its IO command, which the SDK polls
    # for every 0.1 s (usually >= 100 ms; a fast round trip can beat the first poll,
    # so that is not asserted here); command() must not wait for it.
    t0 = time.monotonic()
    robot.command(cmd(q, closed=True))
    took = time.monotonic() - t0
    assert took < 0.05, f"command() blocked {took * 1000:.0f} ms on the gripper"
    samples = [robot.read_state().gripper]
    assert samples[0] < 0.5  # returned before the fingers got anywhere
    deadline = time.monotonic() + 3.0
    while samples[-1] < 0.95 and time.monotonic() < deadline:
        robot.command(cmd(q, closed=True))  # the loop keeps asking: no new SDK call
        time.sleep(0.02)
        samples.append(robot.read_state().gripper)
    assert samples[-1] > 0.95, samples
    assert any(0.05 < g < 0.95 for g in samples), samples  # seen on the way, not jumping
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(samples)), samples
    state = robot.read_state()
    assert isinstance(state.object_held, bool) and state.object_held is False  # nothing there
    assert state.fault is None

    t0 = time.monotonic()
    robot.command(cmd(q, closed=False))
    assert time.monotonic() - t0 < 0.05
    assert wait_until(lambda: robot.read_state().gripper < 0.05, 3.0)
    assert isinstance(robot.read_state().object_held, bool)


# ---- 5. e-stop ------------------------------------------------------------------------------


def test_estop_is_a_fault_on_every_read_while_pressed(robot: SawyerRobot, fault_pub: Any) -> None:
    assert robot.read_state().fault is None
    fault(fault_pub, "estop")
    assert wait_until(lambda: "e-stop" in (robot.read_state().fault or ""), 3.0)
    for _ in range(20):
        state = robot.read_state()
        assert state.fault is not None and "e-stop button pressed" in state.fault, state.fault
        assert state.enabled is False
        time.sleep(0.02)
    fault(fault_pub, "clear")  # released, but still stopped until a reset
    assert wait_until(lambda: "stopped" in (robot.read_state().fault or ""), 3.0)


def test_estop_pressed_at_connect_is_a_one_line_driver_error(
    twin: TwinProcess, enabler: Any, fault_pub: Any
) -> None:
    fault(fault_pub, "estop")
    assert wait_until(lambda: enabler.state().estop_button == 1, 3.0)
    robot = SawyerRobot()
    with pytest.raises(DriverError) as err:
        robot.connect()
    assert "e-stop is pressed" in one_line(err)
    with pytest.raises(DriverError, match="not connected"):
        robot.read_state()


def test_robot_error_is_a_fault_on_every_read_until_reset(
    robot: SawyerRobot, fault_pub: Any, enabler: Any
) -> None:
    fault(fault_pub, "error")  # a joint fault: error and stopped (estop source FAULT)
    assert wait_until(lambda: robot.read_state().fault is not None, 3.0)
    for _ in range(10):
        state = robot.read_state()
        assert state.fault is not None and state.enabled is False, state
        time.sleep(0.02)
    enabler.reset()
    enabler.enable()
    assert wait_until(lambda: robot.read_state().fault is None, 3.0)


def test_software_version_mismatch_is_a_one_line_driver_error(
    twin: TwinProcess, rospy: Any
) -> None:
    version = rospy.get_param(VERSION_PARAM)
    rospy.set_param(VERSION_PARAM, "1.0.0")  # one no intera_sdk supports
    try:
        with pytest.raises(DriverError) as err:  # not the SDK's sys.exit
            SawyerRobot().connect()
        assert "software version does not match" in one_line(err)
    finally:
        rospy.set_param(VERSION_PARAM, version)


# ---- 6. hold and disconnect ---------------------------------------------------------------


def test_hold_commands_the_measured_angles_not_the_target(
    robot: SawyerRobot, twin: TwinProcess, fault_pub: Any
) -> None:
    start = robot.read_state().q
    target = start + np.array([0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3])
    for _ in range(4):
        robot.command(cmd(target))
        time.sleep(0.05)
    # Joint states stopped mid-move: the angles hold() measures are the ones read here.
    fault(fault_pub, "stop_joint_states")
    assert wait_until(lambda: time.monotonic() - robot.read_state().stamp > 0.05, 3.0)
    measured = robot.read_state().q
    assert 0.01 < measured[0] - start[0] < 0.29  # caught on the way
    n = len(log_lines(twin))
    robot.hold()
    assert wait_until(lambda: len(log_lines(twin)) > n, 3.0)
    lines = log_lines(twin)
    assert len(lines) == n + 1
    held = lines[-1]
    assert held["mode"] == 1 and held["names"] == list(NAMES)
    np.testing.assert_allclose(by_name(held), measured, rtol=0, atol=1e-9)
    assert abs(by_name(held)[0] - target[0]) > 0.01


def test_disconnect_holds_and_leaves_the_robot_enabled(twin: TwinProcess, enabler: Any) -> None:
    others = set(driver_threads())
    robot = SawyerRobot()
    robot.connect()
    threads = [t for t in driver_threads() if t not in others]
    assert {t.name for t in threads} == set(DRIVER_THREADS)
    measured = robot.read_state().q  # at rest (clean_robot): the hold must send these
    n = len(log_lines(twin))
    robot.disconnect()
    assert wait_until(lambda: len(log_lines(twin)) > n, 3.0)
    lines = log_lines(twin)
    assert len(lines) == n + 1
    assert lines[-1]["accepted"]
    np.testing.assert_allclose(by_name(lines[-1]), measured, rtol=0, atol=1e-9)
    time.sleep(0.1)
    assert enabler.state().enabled
    assert not any(t.is_alive() for t in threads)  # the gripper worker, the master watch
    with pytest.raises(DriverError, match="not connected"):
        robot.read_state()


def test_disconnect_disables_when_asked(twin: TwinProcess, enabler: Any) -> None:
    robot = SawyerRobot(disable_on_disconnect=True)
    robot.connect()
    assert enabler.state().enabled
    measured = robot.read_state().q
    n = len(log_lines(twin))
    robot.disconnect()
    assert wait_until(lambda: not enabler.state().enabled, 3.0)
    # The hold was sent before the disable (ROS does not order two topics' messages).
    assert wait_until(lambda: len(log_lines(twin)) > n, 3.0)
    np.testing.assert_allclose(by_name(log_lines(twin)[-1]), measured, rtol=0, atol=1e-9)


# ---- 7. bad commands ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda q: np.where(np.arange(7) == 3, np.nan, q), id="nan"),
        pytest.param(lambda q: np.where(np.arange(7) == 6, np.inf, q), id="inf"),
        pytest.param(lambda q: q[:6], id="six"),
        pytest.param(lambda q: np.append(q, 0.0), id="eight"),
    ],
)
def test_bad_command_raises_and_nothing_reaches_the_twin(
    robot: SawyerRobot, twin: TwinProcess, rospy: Any, bad: Any
) -> None:
    from intera_core_msgs.msg import IOComponentCommand
    from intera_core_msgs.msg import JointCommand as RosJointCommand

    q = robot.read_state().q
    robot.command(cmd(q, closed=False))  # the gripper's request is now "open"
    time.sleep(0.3)
    joint_cmds = Recorder(rospy, LIMB_NS + "joint_command", RosJointCommand)
    io_cmds = Recorder(rospy, GRIPPER_NS + "command", IOComponentCommand)
    try:
        time.sleep(0.2)  # the recorders are connected
        n = len(log_lines(twin))
        with pytest.raises(ValueError, match="7 finite angles"):
            robot.command(cmd(bad(q), closed=True))
        time.sleep(0.3)
        assert len(log_lines(twin)) == n and joint_cmds.got == [] and io_cmds.got == []
        robot.command(cmd(q))  # a good one does arrive: the checks above could see one
        assert wait_until(lambda: len(log_lines(twin)) == n + 1 and len(joint_cmds.got) == 1, 3.0)
    finally:
        joint_cmds.close()
        io_cmds.close()


# ---- 8. another limb ------------------------------------------------------------------------


def test_limb_of_another_name_is_a_one_line_driver_error(twin: TwinProcess) -> None:
    robot = SawyerRobot(limb_name="left")
    with pytest.raises(DriverError) as err:
        robot.connect()
    # Named from the robot's own limb list, not the half-built Limb the SDK returns.
    assert one_line(err) == "the Sawyer has no limb 'left' (it has right)"
    with pytest.raises(DriverError, match="not connected"):
        robot.command(cmd(np.array(SAWYER.neutral)))


# ---- 9. an external gripper -----------------------------------------------------------------


def test_use_gripper_false_touches_no_intera_gripper(twin: TwinProcess, rospy: Any) -> None:
    from intera_core_msgs.msg import IOComponentCommand

    before_m = gripper_device_m(rospy)
    assert before_m == pytest.approx(INTERA_GRIPPER_OPEN_M, abs=1e-3)  # open: a close would show
    io_cmds = Recorder(rospy, GRIPPER_NS + "command", IOComponentCommand)
    try:
        time.sleep(0.2)
        robot = SawyerRobot(use_gripper=False)
        robot.connect()
        try:
            q = robot.read_state().q
            for closed in (True, False, True):
                robot.command(cmd(q, closed=closed))
                time.sleep(0.1)
            state = robot.read_state()
            assert state.object_held is None and state.gripper == 0.0
        finally:
            robot.disconnect()
        time.sleep(0.3)
        assert io_cmds.got == []  # no IO command to the gripper at all
    finally:
        io_cmds.close()
    assert gripper_device_m(rospy) == pytest.approx(before_m, abs=1e-6)
