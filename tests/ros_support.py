"""Real ROS processes for tests: a roscore on a free port of 127.0.0.1, its logs in a
temporary ROS_HOME, stopped with everything it started.

Tests that need ROS are marked ``ros``; they run in grasprt's ROS environment
(``make test-ros``: Debian's rospy, the generated Intera messages and the real
intera_interface on PYTHONPATH). Outside it they are skipped, except in CI, where a
missing ROS environment is a failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RosMaster:
    uri: str
    env: dict[str, str]  # the environment every ROS process of the test gets
    process: subprocess.Popen

    def alive(self) -> bool:
        return self.process.poll() is None


def _wait_for_master(uri: str, timeout_s: float) -> None:
    import xmlrpc.client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            xmlrpc.client.ServerProxy(uri).getPid("/test")
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"roscore at {uri} did not come up in {timeout_s} s")


@contextmanager
def roscore(tmp: Path, timeout_s: float = 20.0) -> Iterator[RosMaster]:
    """A fresh master on a free port; every process group it started is stopped."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ROS_MASTER_URI": uri,
        "ROS_IP": "127.0.0.1",
        "ROS_HOME": str(tmp / "ros_home"),
        "ROS_LOG_DIR": str(tmp / "ros_home" / "log"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ROS_HOSTNAME", None)
    proc = subprocess.Popen(
        ["roscore", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_master(uri, timeout_s)
        yield RosMaster(uri, env, proc)
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGINT, then SIGKILL, to a process started with start_new_session=True."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout_s)
    except ProcessLookupError:
        pass
