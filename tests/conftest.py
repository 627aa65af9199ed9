"""Shared test setup: helper modules in tests/ (e.g. bundle_factory) import by name.

No folder directly under tests/ may be named like a top-level package (grasprt):
with tests/ on sys.path it would shadow the installed package.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``ros`` need grasprt's ROS environment (make test-ros), ``mujoco``
    MuJoCo and robosuite's assets (make mujoco). Outside them they are skipped, with the
    reason; in CI a missing environment fails them."""
    import importlib.util
    import os

    import pytest

    needs = {
        "ros": (("rospy", "intera_interface"), "grasprt's ROS environment (make test-ros)"),
        "mujoco": (("mujoco", "robosuite"), "MuJoCo and robosuite's assets (make mujoco)"),
    }
    for marker, (modules, what) in needs.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if not missing or os.environ.get("CI"):
            continue  # in CI they run, and fail if the environment is not there
        why = f"needs {what}: {', '.join(missing)} not importable"
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=why))


@__import__("pytest").fixture(scope="session")
def ros_node(tmp_path_factory):
    """One roscore for the whole test session, with this process's rospy node on it.

    rospy allows one init_node per process, and the node stays bound to the master it
    started with: every in-process ROS test shares this one. A test that must lose its
    master starts its own roscore and only talks to it from other processes.
    Yields the environment (ROS_MASTER_URI, ROS_HOME, ...) for processes it starts.
    """
    import os

    from ros_support import roscore

    from grasprt.drivers.ros_node import ensure_node

    keys = ("ROS_MASTER_URI", "ROS_IP", "ROS_HOME", "ROS_LOG_DIR")
    saved = {k: os.environ.get(k) for k in keys}
    with roscore(tmp_path_factory.mktemp("ros_session")) as master:
        os.environ.update({k: master.env[k] for k in keys})
        try:
            ensure_node("grasprt_test")
            yield master.env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
