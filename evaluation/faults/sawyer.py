"""`grasprt faults --robot sawyer`: the campaign against the Sawyer twin over ROS.

One roscore on a free port of 127.0.0.1 for the campaign; a fresh `grasprt twin` per
fault (a fault on the twin latches until reset), its ``--log`` kept; `grasprt run
--robot sawyer` on the twin's hand camera. Robot and camera faults go in through the
twin's own fault topic (``/grasprt_twin/fault``), so the Sawyer driver meets them as it
would meet them on a robot; after a SIGKILL the twin's command timeout must hold it.
Needs grasprt's ROS environment (make ros; . build/ros/setup.sh; .venv-ros).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grasprt.errors import GrasprtError

CAMERA = "ros:/io/internal_camera/right_hand_camera/image_raw"
READY = "twin: ready"
# The campaign's run settings: the twin's table (docs/twin.toml says why).
TWIN_TOML = "[limiter]\nfloor_z = -0.06\n"
# Which twin fault each injected word becomes.
TWIN_FAULTS = {
    "camera_stall": "freeze_camera",
    "state_stall": "stop_joint_states",
    "estop": "estop",
    "robot_error": "error",
}
NOT_SET_UP = (
    "--robot sawyer needs grasprt's ROS environment (make ros; . build/ros/setup.sh; "
    "run .venv-ros/bin/grasprt faults --robot sawyer)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout_s)


class TwinSide:
    """The robot's side of a sawyer campaign: the master, a twin per trial, its faults."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.config = root / "twin.toml"
        self.config.write_text(TWIN_TOML)
        self.args = ("--camera", CAMERA, "--config", str(self.config))
        self.twin: subprocess.Popen[bytes] | None = None
        self._publisher: Any = None

    def before(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        out = workdir / "twin.out"
        with out.open("wb") as f:
            self.twin = subprocess.Popen(
                [sys.executable, "-m", "grasprt.cli", "twin", "--robot", "sawyer", "--seed",
                 "0", "--log", str(workdir / "twin.jsonl")],
                env=self.env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60.0
        while READY not in out.read_text(errors="replace"):
            if self.twin.poll() is not None or time.monotonic() > deadline:
                _stop(self.twin)
                tail = out.read_text(errors="replace").strip().splitlines()[-3:]
                raise GrasprtError(f"grasprt twin did not get ready: {' / '.join(tail)}")
            time.sleep(0.05)

    def after(self) -> None:
        if self.twin is not None:
            _stop(self.twin)
            self.twin = None

    def fault(self, word: str, mark: Callable[[], None]) -> None:
        """Publish the twin's fault for `word` once the twin listens; `mark` at the send."""
        pub = self._fault_publisher()
        deadline = time.monotonic() + 10.0
        while pub.get_num_connections() < 1:
            if time.monotonic() > deadline:
                raise GrasprtError("the twin does not listen on /grasprt_twin/fault")
            time.sleep(0.01)
        from std_msgs.msg import String

        mark()
        pub.publish(String(data=TWIN_FAULTS[word]))

    def _fault_publisher(self) -> Any:
        if self._publisher is None:
            import rospy
            from std_msgs.msg import String

            if rospy.core.is_initialized():
                # rospy binds a process to one master for good: ours would not hear it.
                raise GrasprtError("the campaign needs a process with no ROS node yet")
            os.environ.update(self.env)
            rospy.init_node("grasprt_faults", anonymous=True, disable_signals=True)
            self._publisher = rospy.Publisher("/grasprt_twin/fault", String, queue_size=10)
        return self._publisher


def twin_log(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "twin.jsonl"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            lines.append(json.loads(line))
    return lines


def _wait_for_master(uri: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            xmlrpc.client.ServerProxy(uri).getPid("/grasprt_faults")
            return
        except OSError:
            time.sleep(0.1)
    raise GrasprtError(f"roscore at {uri} did not come up in {timeout_s:g} s")


@contextlib.contextmanager
def twin_session(root: Path, progress: Callable[[str], None]) -> Iterator[TwinSide]:
    """A roscore on a free port for the campaign; stopped with everything it started."""
    try:
        import intera_interface  # noqa: F401
        import rospy  # noqa: F401
    except ImportError:
        raise GrasprtError(NOT_SET_UP) from None
    if shutil.which("roscore") is None:
        raise GrasprtError(f"roscore not found: {NOT_SET_UP}")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ROS_MASTER_URI": uri,
        "ROS_IP": "127.0.0.1",
        "ROS_HOME": str(root / "ros_home"),
        "ROS_LOG_DIR": str(root / "ros_home" / "log"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ROS_HOSTNAME", None)
    core = subprocess.Popen(
        ["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    side = TwinSide(root, env)
    try:
        _wait_for_master(uri)
        progress(f"roscore at {uri}")
        yield side
    finally:
        side.after()
        _stop(core)
