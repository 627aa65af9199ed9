"""The one ROS node of a grasprt process, and the check that a master is there.

rospy allows one ``init_node`` per process, and the Sawyer driver and a ROS camera both
need it: each calls :func:`ensure_node`. rospy is imported here, when a ROS driver
connects, never at module import, so grasprt runs without ROS everywhere else.

``init_node`` waits forever for a master that is not there; :func:`check_master` asks
first, with a timeout, so no master is one clear line before anything moves.
"""

from __future__ import annotations

import os
import threading
import xmlrpc.client
from types import ModuleType
from typing import Any

from grasprt.errors import DriverError

ROS_MISSING = (
    "rospy not found: run grasprt in its ROS environment (make ros; . build/ros/setup.sh; "
    ".venv-ros/bin/grasprt ...), or source your ROS workspace"
)
_lock = threading.Lock()
_node: str | None = None


def import_rospy() -> ModuleType:
    try:
        import rospy
    except ImportError:
        raise DriverError(ROS_MISSING) from None
    return rospy


def master_uri() -> str:
    return os.environ.get("ROS_MASTER_URI", "http://localhost:11311")


def master_pid(uri: str, timeout_s: float, caller: str = "/grasprt_check") -> int:
    """The master's pid, asked with a timeout of its own (a master that hangs must not
    hang the caller, and no process-wide socket default is touched). Raises OSError or
    xmlrpc.client.Error when it does not answer."""
    proxy = xmlrpc.client.ServerProxy(uri, transport=_TimeoutTransport(timeout_s))
    code, status, pid = proxy.getPid(caller)
    if code != 1:
        raise xmlrpc.client.Fault(code, status)
    return int(pid)


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def make_connection(self, host: Any) -> Any:
        conn = super().make_connection(host)
        conn.timeout = self._timeout_s
        return conn


def check_master(timeout_s: float = 2.0) -> None:
    """A DriverError naming ROS_MASTER_URI unless a master answers within the timeout."""
    uri = master_uri()
    try:
        master_pid(uri, timeout_s)
    except (OSError, xmlrpc.client.Error) as err:
        raise DriverError(
            f"no ROS master at ROS_MASTER_URI={uri} ({err}): start roscore, or point "
            "ROS_MASTER_URI at the robot"
        ) from None


def ensure_node(name: str = "grasprt") -> Any:
    """rospy, with this process's node started (once; later calls reuse it)."""
    global _node
    rospy = import_rospy()
    with _lock:
        if _node is None:
            check_master()
            # disable_signals: grasprt's own handlers hold the arm on SIGINT/SIGTERM.
            rospy.init_node(name, anonymous=True, disable_signals=True)
            _node = rospy.get_name()
    return rospy
