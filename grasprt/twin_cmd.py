"""`grasprt twin --robot sawyer`: a simulated Sawyer served over ROS as the robot does.

The real Intera SDK, and grasprt's Sawyer driver on it, run against it unchanged: same
world, dynamics gap and grasp physics as ``grasprt run --robot sim``. It runs until
SIGINT or SIGTERM (exit 0). No rospy, no Intera messages or no master: one line, exit 2.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import click

from grasprt.drivers.sim.config import GAP_PRESETS
from grasprt.errors import DriverError

INTERA_MSGS_MISSING = (
    "intera_core_msgs not found: run the twin in grasprt's ROS environment "
    "(make ros; . build/ros/setup.sh; .venv-ros/bin/grasprt twin ...)"
)


@click.command(
    "twin",
    epilog="""\b
Examples (in grasprt's ROS environment: make ros; . build/ros/setup.sh):
  grasprt twin --robot sawyer --roscore &     a master and the twin, for a dry run
  grasprt run --robot sawyer --config docs/twin.toml \\
      --camera ros:/io/internal_camera/right_hand_camera/image_raw
  grasprt twin --robot sawyer --gap large --fault estop@20
  rostopic pub -1 /grasprt_twin/fault std_msgs/String "data: 'estop'"

Exit status: 0 stopped by SIGINT/SIGTERM, 2 bad input (no rospy, no master, a bad
--fault).""",
)
@click.option(
    "--robot",
    type=click.Choice(["sawyer"]),
    default="sawyer",
    show_default=True,
    help="The robot to serve (the Sawyer's Intera topics).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the world.")
@click.option(
    "--gap",
    type=click.Choice(tuple(GAP_PRESETS)),
    default=None,
    help="The sim-to-real dynamics gap (latency, lag, noise, bias, top speed ratio). "
    "[default: the --config's [sim] gap, else default]",
)
@click.option("--moving", is_flag=True, help="The sphere rolls.")
@click.option(
    "--config",
    "config_file",
    default=None,
    metavar="FILE.toml",
    help="Its [sim] section sets the world (camera_mount_error, board, ...); flags win.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND@SECONDS",
    help="Inject a fault that long after ready (estop, error, stop_joint_states, "
    "freeze_camera, clear); repeatable. At run time: rostopic pub /grasprt_twin/fault.",
)
@click.option(
    "--log",
    "log_path",
    default=None,
    metavar="PATH",
    help="Append one JSON line per joint command received (ROS receive time, positions).",
)
@click.option(
    "--roscore",
    "own_master",
    is_flag=True,
    help="Start a roscore at ROS_MASTER_URI's port first (127.0.0.1) and stop it on exit.",
)
def twin_cmd(own_master: bool, **options: Any) -> int:
    """Serve a simulated Sawyer over ROS (Intera's side: limb, enable, gripper, camera)."""
    with contextlib.ExitStack() as stack:
        if own_master:
            stack.enter_context(_roscore())
        return _serve(**options)


@contextlib.contextmanager
def _roscore() -> Iterator[None]:
    """A roscore on ROS_MASTER_URI's port, for a dry run that needs nothing else."""
    import os
    import subprocess
    import time
    import urllib.parse

    from grasprt.drivers.ros_node import check_master, master_uri

    port = urllib.parse.urlparse(master_uri()).port or 11311
    proc = subprocess.Popen(
        ["roscore", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20.0
        while True:
            try:
                check_master(timeout_s=0.5)
                break
            except DriverError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise DriverError(f"--roscore: roscore -p {port} did not start") from None
                time.sleep(0.2)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _sim_settings(config_file: str | None, gap: str | None, moving: bool) -> Any:
    """The [sim] section of `config_file` (or the defaults), with the flags on top."""
    import dataclasses

    from grasprt.config import load_file
    from grasprt.drivers.sim.config import SimSettings

    doc = load_file(config_file) if config_file else {}
    try:
        settings = SimSettings(**doc.get("sim", {}))
    except TypeError as e:
        raise DriverError(f"{config_file} [sim]: {e}") from None
    if gap is not None:
        settings = dataclasses.replace(settings, gap=gap)
    if moving:
        settings = dataclasses.replace(settings, moving=True)
    return settings


def _serve(
    robot: str,
    seed: int,
    gap: str | None,
    moving: bool,
    faults: tuple[str, ...],
    log_path: str | None,
    config_file: str | None,
) -> int:
    from grasprt.drivers.ros_node import ensure_node, import_rospy, master_uri
    from grasprt.drivers.sawyer_twin.faults import parse_fault

    scheduled = tuple(parse_fault(f) for f in faults)
    sim = _sim_settings(config_file, gap, moving)
    gap, moving = sim.gap, sim.moving
    import_rospy()
    try:
        from grasprt.drivers.sawyer_twin.node import Twin, TwinOptions
    except ImportError:
        raise DriverError(INTERA_MSGS_MISSING) from None
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rospy = ensure_node("grasprt_twin")
        options = TwinOptions(seed, gap, moving, scheduled, log_path, sim=sim)
        twin = Twin(rospy, options)
        twin.start()
        click.echo(
            f"twin: ready ({robot}, master {master_uri()}, node {rospy.get_name()}, seed {seed}, "
            f"gap {gap}{', moving' if moving else ''}, {len(scheduled)} scheduled faults)"
        )
        while not stop.wait(0.2):
            pass
        twin.stop()
        r = twin.rates()
        click.echo(
            f"twin: stopped after {r['seconds']:.1f} s: joint_states {r['joint_states_hz']:.1f} "
            f"Hz, camera {r['camera_hz']:.1f} Hz, render {r['render_ms']:.1f} ms, "
            f"{r['commands']:.0f} commands followed, {r['refused']:.0f} refused"
        )
        rospy.signal_shutdown("grasprt twin stopped")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
