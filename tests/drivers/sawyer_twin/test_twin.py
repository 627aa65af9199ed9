"""`grasprt twin` against the REAL Intera SDK over a real ROS master.

One master and one twin serve the whole module: rospy allows one node per process, and
it stays bound to the master it was started with. The twin runs with `--gap none` (no
latency, lag, noise or encoder offset), so motion can be measured exactly. Tests that
fault the robot put it back (clear, reset, enable) before they end.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from polling import wait_until
from ros_support import free_port, roscore
from twin_support import TwinProcess, commands_logged, group_gone, start_twin

from grasprt.profiles import SAWYER

pytestmark = pytest.mark.ros

J0 = "right_j0"
V_J0 = SAWYER.joints[0].velocity


def node_master() -> str:
    """The master this process's node registered with (asked of the node itself)."""
    import rospy

    return xmlrpc.client.ServerProxy(rospy.core.get_node_uri()).getMasterUri("/test")[2]


@pytest.fixture(scope="module")
def ros_env(ros_node: dict[str, str]) -> dict[str, str]:
    """The session's master, with this process's node on it (tests/conftest.py)."""
    return ros_node


@pytest.fixture(scope="module")
def twin(
    ros_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TwinProcess]:
    proc = start_twin(ros_env, tmp_path_factory.mktemp("twin"), "--gap", "none", "--seed", "3")
    yield proc
    rc = proc.stop()
    assert rc == 0, proc.text()


@pytest.fixture(scope="module")
def rospy(ros_env: dict[str, str], twin: TwinProcess) -> Any:
    import rospy as rp

    assert node_master() == ros_env["ROS_MASTER_URI"]
    return rp


@pytest.fixture
def sdk(rospy: Any) -> Any:
    import intera_interface

    return intera_interface


def enabled(sdk: Any) -> Any:
    enabler = sdk.RobotEnable(versioned=True)
    enabler.enable()
    return enabler


def fault(rospy: Any, kind: str) -> None:
    from std_msgs.msg import String

    pub = rospy.Publisher("/grasprt_twin/fault", String, queue_size=10, latch=True)
    # Latched: the twin gets it even if it connects after this publish.
    pub.publish(String(kind))


def still(limb: Any, seconds: float) -> float:
    """The largest change of any joint over `seconds`."""
    a = np.array(limb.joint_ordered_angles())
    time.sleep(seconds)
    return float(np.max(np.abs(np.array(limb.joint_ordered_angles()) - a)))


def count_messages(rospy: Any, topic: str, msg_type: type, seconds: float) -> list[Any]:
    got: list[Any] = []
    sub = rospy.Subscriber(topic, msg_type, got.append, queue_size=100)
    wait_until(lambda: bool(got), 5.0)
    got.clear()
    time.sleep(seconds)
    sub.unregister()
    return got


# ---- RobotEnable, Limb, joint states ------------------------------------------------------


def test_robot_enable_versioned_enables(sdk: Any, rospy: Any) -> None:
    enabler = sdk.RobotEnable(versioned=True)  # exits the process on a version mismatch
    assert enabler.version_check()
    enabler.disable()
    assert not enabler.state().enabled
    enabler.enable()
    state = enabler.state()
    assert state.enabled and not state.stopped and not state.error
    assert state.estop_button == 0
    assert rospy.get_param("/manifest/robot_class") == "sawyer"


def test_limb_has_the_sawyers_joints_at_100_hz(sdk: Any, rospy: Any) -> None:
    from sensor_msgs.msg import JointState

    limb = sdk.Limb("right")
    assert limb.joint_names() == list(SAWYER.joint_names)
    assert set(SAWYER.joint_names) <= set(limb.joint_angles())
    msgs = count_messages(rospy, "/robot/joint_states", JointState, 2.0)
    assert 70 <= len(msgs) / 2.0 <= 110  # 100 Hz, with room for a loaded CI machine
    assert msgs[-1].name[0] == "head_pan" and len(msgs[-1].velocity) == len(msgs[-1].name)


def test_endpoint_state_and_fk_service_are_the_kinematics(sdk: Any) -> None:
    from grasprt.kinematics import Kinematics

    limb = sdk.Limb("right")
    angles = limb.joint_angles()
    hand = Kinematics(SAWYER).poses(np.array([angles[n] for n in SAWYER.joint_names])).hand
    fk = limb.joint_angles_to_cartesian_pose(angles)
    assert np.allclose([fk.position.x, fk.position.y, fk.position.z], hand[:3, 3], atol=1e-9)
    ep = limb.endpoint_pose()["position"]
    assert np.allclose(ep, hand[:3, 3], atol=1e-6)  # the arm is at rest
    assert limb.tip_state("right_gripper_tip") is not None


def test_ik_service_solves_a_reachable_pose(sdk: Any) -> None:
    from geometry_msgs.msg import Point, Pose, Quaternion

    limb = sdk.Limb("right")
    q = dict(limb.joint_angles())
    q["right_j0"] += 0.2
    q["right_j3"] -= 0.2
    target = limb.joint_angles_to_cartesian_pose(q)
    solution = limb.ik_request(
        Pose(
            position=Point(target.position.x, target.position.y, target.position.z),
            orientation=target.orientation,
        )
    )
    assert solution, "IK found no solution for a pose FK made"
    back = limb.joint_angles_to_cartesian_pose(solution)
    p, t = back.position, target.position
    assert math.dist((p.x, p.y, p.z), (t.x, t.y, t.z)) < 1e-4
    far = Pose(position=Point(3.0, 0.0, 0.0), orientation=Quaternion(0, 0, 0, 1))
    assert limb.ik_request(far) is False


# ---- joint commands -------------------------------------------------------------------------


def test_position_command_moves_at_the_speed_ratio(sdk: Any, twin: TwinProcess) -> None:
    enabled(sdk)
    limb = sdk.Limb("right")
    limb.set_joint_position_speed(0.2)
    limb.set_command_timeout(1.0)
    time.sleep(0.2)  # the latched settings reach the twin
    start = limb.joint_angles()
    target = dict(start, **{J0: start[J0] + 0.3})
    samples = []
    t_end = time.monotonic() + 1.6
    while time.monotonic() < t_end:  # 10 Hz, as grasprt's loop sends them
        limb.set_joint_positions(target)
        samples.append((time.monotonic(), limb.joint_angle(J0)))
        time.sleep(0.1)
    assert abs(limb.joint_angle(J0) - target[J0]) < 1e-3
    moving = [(t, q) for t, q in samples if 0.02 < q - start[J0] < 0.28]
    assert len(moving) >= 3
    speed = (moving[-1][1] - moving[0][1]) / (moving[-1][0] - moving[0][0])
    cap = V_J0 * 0.2
    assert 0.8 * cap < speed < 1.1 * cap, f"j0 moved at {speed:.3f} rad/s, cap {cap:.3f}"
    lines = commands_logged(twin)
    assert lines and lines[-1]["accepted"] and lines[-1]["mode"] == 1
    assert lines[-1]["positions"][lines[-1]["names"].index(J0)] == pytest.approx(target[J0])
    assert lines[-1]["received"] >= lines[-1]["sent"] - 0.01


def test_no_command_for_the_timeout_holds_the_arm(sdk: Any) -> None:
    enabled(sdk)
    limb = sdk.Limb("right")
    limb.set_joint_position_speed(0.2)
    limb.set_command_timeout(0.3)
    time.sleep(0.2)
    start = limb.joint_angle(J0)
    limb.set_joint_positions(dict(limb.joint_angles(), **{J0: start - 1.0}))  # 3 s away
    time.sleep(0.8)
    moved = start - limb.joint_angle(J0)
    assert 0.03 < moved < 0.2, f"moved {moved:.3f} rad in the 0.3 s before the timeout"
    assert still(limb, 0.5) < 1e-9


def test_other_modes_are_refused(sdk: Any, twin: TwinProcess) -> None:
    enabled(sdk)
    limb = sdk.Limb("right")
    limb.set_command_timeout(1.0)
    time.sleep(0.1)
    for _ in range(5):
        limb.set_joint_velocities({J0: 0.5})
        time.sleep(0.05)
    assert still(limb, 0.3) < 1e-9
    last = commands_logged(twin)[-1]
    assert last["mode"] == 2 and not last["accepted"] and "VELOCITY_MODE" in last["reason"]
    assert wait_until(lambda: twin.text().count("VELOCITY_MODE is not served") == 1, 2.0)


# ---- gripper and camera -------------------------------------------------------------------


def test_gripper_calibrates_and_closes(sdk: Any) -> None:
    enabled(sdk)
    gripper = sdk.Gripper("right_gripper")  # calibrates when it is not
    assert gripper.is_calibrated() and not gripper.has_error()
    gripper.open()
    assert wait_until(lambda: gripper.get_position() > 0.04, 2.0)
    gripper.close()
    assert wait_until(lambda: gripper.get_position() < 0.001, 2.0), gripper.get_position()
    assert not gripper.is_gripping()  # nothing between the fingers
    gripper.open()
    assert wait_until(lambda: gripper.get_position() > 0.04 and not gripper.is_moving(), 2.0)


def test_hand_camera_streams_rgb8_with_camera_info(rospy: Any) -> None:
    from sensor_msgs.msg import CameraInfo, Image

    ns = "/io/internal_camera/right_hand_camera/"
    frames = count_messages(rospy, ns + "image_raw", Image, 2.0)
    assert 15 <= len(frames) / 2.0 <= 35
    img = frames[-1]
    assert (img.encoding, img.width, img.height, img.step) == ("rgb8", 400, 400, 1200)
    assert len(img.data) == 400 * 400 * 3
    pixels = np.frombuffer(img.data, np.uint8)
    assert pixels.std() > 5  # a rendered scene, not a blank buffer
    age = (rospy.get_rostime() - img.header.stamp).to_sec()
    assert 0.0 <= age < 1.0
    info = rospy.wait_for_message(ns + "camera_info", CameraInfo, timeout=5.0)
    assert (info.width, info.height, info.distortion_model) == (400, 400, "plumb_bob")
    assert info.K[0] == pytest.approx(238.35072) and info.K[2] == pytest.approx(199.5)


def test_cameras_interface_finds_the_hand_camera(sdk: Any) -> None:
    cameras = sdk.Cameras()
    assert cameras.list_cameras() == ["right_hand_camera"]
    assert cameras.is_camera_streaming("right_hand_camera")


# ---- faults and episodes ------------------------------------------------------------------


def test_estop_disables_and_commands_are_ignored(sdk: Any, rospy: Any) -> None:
    enabler = enabled(sdk)
    limb = sdk.Limb("right")
    limb.set_command_timeout(1.0)
    fault(rospy, "estop")
    assert wait_until(lambda: enabler.state().estop_button == 1, 3.0)
    state = enabler.state()
    assert state.stopped and not state.enabled and state.estop_source == 1
    start = limb.joint_angles()
    for _ in range(5):
        limb.set_joint_positions(dict(start, **{J0: start[J0] + 0.2}))
        time.sleep(0.1)
    assert still(limb, 0.2) < 1e-9
    assert abs(limb.joint_angle(J0) - start[J0]) < 1e-9
    with pytest.raises(OSError):
        enabler.reset()  # the SDK refuses: the button is still down
    fault(rospy, "clear")  # released: still stopped until a reset
    assert wait_until(lambda: enabler.state().estop_button == 3, 3.0)
    enabler.enable()  # resets, then enables
    assert enabler.state().enabled
    limb.set_joint_positions(dict(start, **{J0: start[J0] + 0.05}))
    assert wait_until(lambda: limb.joint_angle(J0) > start[J0] + 0.01, 2.0)


def test_robot_error_disables_until_reset(sdk: Any, rospy: Any) -> None:
    enabler = enabled(sdk)
    fault(rospy, "error")
    assert wait_until(lambda: enabler.state().error, 3.0)
    assert not enabler.state().enabled
    enabler.enable()
    assert enabler.state().enabled and not enabler.state().error


def test_stop_joint_states_and_freeze_camera(rospy: Any) -> None:
    from sensor_msgs.msg import Image, JointState

    fault(rospy, "stop_joint_states")
    fault(rospy, "freeze_camera")
    time.sleep(0.3)
    assert count_messages_after_first(rospy, "/robot/joint_states", JointState, 0.5) == 0
    image = "/io/internal_camera/right_hand_camera/image_raw"
    assert count_messages_after_first(rospy, image, Image, 0.5) == 0
    fault(rospy, "clear")
    assert count_messages_after_first(rospy, "/robot/joint_states", JointState, 0.5) > 30


def count_messages_after_first(rospy: Any, topic: str, msg_type: type, seconds: float) -> int:
    """Messages in `seconds`, not counting what a latch or a queue delivers first."""
    got: list[float] = []
    sub = rospy.Subscriber(topic, msg_type, lambda _m: got.append(time.monotonic()))
    time.sleep(0.3)
    t0 = time.monotonic()
    time.sleep(seconds)
    sub.unregister()
    return sum(1 for t in got if t >= t0)


def test_reset_places_the_sphere_and_truth_reports_it(rospy: Any) -> None:
    from std_msgs.msg import String

    truths: list[dict] = []
    sub = rospy.Subscriber(
        "/grasprt_twin/truth", String, lambda m: truths.append(json.loads(m.data))
    )
    pub = rospy.Publisher("/grasprt_twin/reset", String, queue_size=1, latch=True)
    pub.publish(String(json.dumps({"seed": 11, "x": 0.61, "y": -0.07})))
    assert wait_until(lambda: any(t["seed"] == 11 for t in truths), 3.0)
    sub.unregister()
    truth = [t for t in truths if t["seed"] == 11][-1]
    assert truth["sphere"][:2] == pytest.approx([0.61, -0.07])
    assert truth["grasp_succeeded"] is False and truth["object_held"] is False


def test_episode_setup_is_answered(rospy: Any) -> None:
    from std_msgs.msg import String

    ready = threading.Event()

    def on_ready(msg: Any) -> None:
        if json.loads(msg.data).get("episode") == 4:
            ready.set()

    sub = rospy.Subscriber("/grasprt/episode_ready", String, on_ready)
    pub = rospy.Publisher("/grasprt/episode_setup", String, queue_size=1, latch=True)
    pub.publish(String(json.dumps({"episode": 4, "seed": 2})))
    assert ready.wait(3.0)
    sub.unregister()
    truth = json.loads(rospy.wait_for_message("/grasprt_twin/truth", String, 3.0).data)
    assert truth["seed"] == 2 * 100_003 + 4


# ---- grasprt's own Sawyer driver --------------------------------------------------------------


def test_grasprt_sawyer_driver_runs_on_the_twin(rospy: Any) -> None:
    from grasprt.drivers.sawyer import SawyerRobot
    from grasprt.types import JointCommand

    robot = SawyerRobot(speed_ratio=0.2, command_timeout_s=0.25)
    robot.connect()
    try:
        state = robot.read_state()
        assert state.enabled and state.fault is None and np.all(np.isfinite(state.q))
        assert state.gripper == pytest.approx(0.0, abs=0.01)
        target = state.q.copy()
        target[0] += 0.05
        for _ in range(10):
            robot.command(JointCommand(q=target, gripper_closed=True, stamp=time.monotonic()))
            time.sleep(0.1)
        state = robot.read_state()
        assert state.q[0] == pytest.approx(target[0], abs=1e-3)
        assert state.gripper > 0.95 and state.object_held is False
        robot.hold()
    finally:
        robot.disconnect()


# ---- the process ----------------------------------------------------------------------------


def test_scheduled_fault_and_clean_exit_on_sigint(tmp_path: Path) -> None:
    """Its own master (the module's rospy node cannot join it): the CLI's --fault, read
    with rostopic; SIGINT exits 0 and leaves no process behind."""
    with roscore(tmp_path) as m:
        assert m.uri != os.environ["ROS_MASTER_URI"], "not a master of its own"
        twin = start_twin(m.env, tmp_path / "twin", "--fault", "estop@0.5")
        try:
            time.sleep(1.0)
            echo = subprocess.run(
                ["rostopic", "echo", "-n", "1", "/robot/state"],
                env=m.env,
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert "estop_button: 1" in echo.stdout, echo.stdout + echo.stderr
        finally:
            os.killpg(twin.process.pid, signal.SIGINT)
            rc = twin.process.wait(timeout=15)
        assert rc == 0, twin.text()
        assert group_gone(twin.process.pid)
        assert "twin: stopped after" in twin.text()


def test_without_a_master_one_line_exit_2() -> None:
    env = {**os.environ, "ROS_MASTER_URI": f"http://127.0.0.1:{free_port()}"}
    r = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "twin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no ROS master" in lines[0], r.stderr


def test_bad_fault_flag_is_exit_2() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "twin", "--fault", "meltdown@1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "grasprt: error: unknown twin fault 'meltdown'; known: estop, error, "
        "stop_joint_states, freeze_camera, clear"
    ]
