"""`grasprt run --robot sawyer` refuses what it cannot run, in one line, before anything
moves: no ROS master, no Intera SDK, a camera topic that never publishes or carries the
wrong message type. Real processes over a real roscore (marked ``ros``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ros_support import free_port, roscore, stop_group

REPO = Path(__file__).resolve().parents[3]
TWIN_TOML = REPO / "docs" / "twin.toml"
CAMERA = "ros:/io/internal_camera/right_hand_camera/image_raw"

pytestmark = pytest.mark.ros


def grasprt_run(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "grasprt.cli", "run", "--robot", "sawyer", "--quiet"]
    return subprocess.run(
        [*cmd, "--config", str(TWIN_TOML), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_no_ros_master_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "ROS_MASTER_URI": f"http://127.0.0.1:{free_port()}"}
    env["ROS_HOME"] = str(tmp_path)
    proc = grasprt_run(env, "--camera", CAMERA, "--record", str(tmp_path / "r.mcap"))
    assert proc.returncode == 2
    line = one_line(proc)
    assert "no ROS master at ROS_MASTER_URI=" in line and env["ROS_MASTER_URI"] in line


def test_intera_interface_missing_is_one_line_exit_2(tmp_path: Path) -> None:
    with roscore(tmp_path) as master:
        env = dict(master.env)
        # The environment of a PC with ROS but without the SDK: its path left out.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in env.get("PYTHONPATH", "").split(os.pathsep) if "intera_sdk" not in p
        )
        proc = grasprt_run(env, "--camera", CAMERA)
    assert proc.returncode == 2
    assert "intera_interface not found" in one_line(proc)


def test_camera_topic_that_never_publishes_is_one_line_exit_2(tmp_path: Path) -> None:
    with roscore(tmp_path) as master:
        proc = grasprt_run(master.env, "--camera", "ros:/nobody/image_raw")
    assert proc.returncode == 2
    assert "/nobody/image_raw" in one_line(proc)


def test_camera_topic_of_the_wrong_type_is_one_line_exit_2(tmp_path: Path) -> None:
    with roscore(tmp_path) as master:
        pub = subprocess.Popen(
            ["rostopic", "pub", "-r", "10", "/wrong/image_raw", "std_msgs/String", "data: x"],
            env=master.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc = grasprt_run(master.env, "--camera", "ros:/wrong/image_raw")
        finally:
            stop_group(pub)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "/wrong/image_raw" in line and "std_msgs/String" in line
