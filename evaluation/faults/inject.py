"""Fault injection inside a `grasprt run` process, for the `grasprt faults` campaign only.

`grasprt run --fault-injection DIR` (a hidden, test-only option) wraps the run's
drivers and policy in thin shims that do nothing until told to, over a FIFO
(``DIR/control``, one word a line, see :data:`COMMANDS`). Every shim sits exactly at the
driver boundary, so what the campaign measures is what the arm was told: each
``command`` and ``hold`` that reached the robot, with its time on the host's monotonic
clock (the clock every process reads alike), goes to ``DIR/arm.jsonl`` in one
unbuffered write, so the log survives a SIGKILL. Without the option none of this is
imported.

What the shims do on command:

* ``camera_stall``: the camera keeps returning the last frame it gave (its stamp ages).
* ``camera_pause S``: a RealSense recording's playback pauses for S seconds, then plays
  on (the driver's ``pause_playback``): a camera lost and back.
* ``nonfinite``: the policy's action becomes NaN.
* ``slow S``: each policy step takes S seconds longer (a model that gets slow).
* ``hang S``: the next policy step blocks S seconds (a hung loop thread).
* ``state_stall``: the robot keeps returning its last state, stamp included.
* ``estop`` / ``robot_error``: the robot's state reports that fault.
* ``clock_step S``: ``time.time`` and ``time.time_ns`` of this process jump by S
  seconds (forwards or back). It is a process-local step of the wall clock as Python
  reads it, not a step of the host's CLOCK_REALTIME (that would need root and would
  move every other process's clock too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from grasprt.errors import ConfigError
from grasprt.types import Drivers, Frame, JointCommand, RobotState

COMMANDS = (
    "camera_stall",
    "camera_pause",
    "nonfinite",
    "slow",
    "hang",
    "state_stall",
    "estop",
    "robot_error",
    "clock_step",
)
CONTROL = "control"
ARM_LOG = "arm.jsonl"


class Switches:
    """What has been injected so far; set by the control thread, read by the shims."""

    def __init__(self, log_path: Path) -> None:
        self.camera_stall = False
        self.nonfinite = False
        self.slow_s = 0.0
        self.hang_s = 0.0
        self.state_stall = False
        self.robot_fault: str | None = None
        self.camera: Any = None  # the run's camera driver, for camera_pause
        self._fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)

    def log(self, op: str, **detail: Any) -> None:
        line = json.dumps({"t": time.monotonic(), "op": op, **detail}) + "\n"
        # One write per line on an O_APPEND file: whole lines, from any thread.
        with contextlib.suppress(OSError):
            os.write(self._fd, line.encode())

    def apply(self, line: str) -> None:
        word, _, arg = line.strip().partition(" ")
        if word not in COMMANDS:
            self.log("unknown", line=line.strip())
            return
        self.log("inject", fault=word, arg=arg)
        if word == "camera_stall":
            self.camera_stall = True
        elif word == "camera_pause":
            self._pause_camera(float(arg))
        elif word == "nonfinite":
            self.nonfinite = True
        elif word == "slow":
            self.slow_s = float(arg)
        elif word == "hang":
            self.hang_s = float(arg)
        elif word == "state_stall":
            self.state_stall = True
        elif word in ("estop", "robot_error"):
            self.robot_fault = "e-stop pressed" if word == "estop" else "robot error state"
        elif word == "clock_step":
            step_wall_clock(float(arg))

    def _pause_camera(self, seconds: float) -> None:
        self.camera.pause_playback(True)

        def resume() -> None:
            self.camera.pause_playback(False)
            self.log("resume")

        threading.Timer(seconds, resume).start()


_wall_offset = 0.0
_real_time, _real_time_ns = time.time, time.time_ns


def step_wall_clock(seconds: float) -> None:
    """Move this process's `time.time` by `seconds` (see the module's note)."""
    global _wall_offset
    _wall_offset += seconds
    offset = _wall_offset
    time.time = lambda: _real_time() + offset  # type: ignore[assignment]
    time.time_ns = lambda: _real_time_ns() + int(offset * 1e9)  # type: ignore[assignment]


def _listen(fifo: Path, switches: Switches) -> None:
    while True:
        # Blocks until the campaign opens its end; EOF when it closes it: open again.
        with open(fifo) as f:
            for line in f:
                if line.strip():
                    switches.apply(line)


def start(directory: str) -> Switches:
    d = Path(directory)
    fifo = d / CONTROL
    try:
        if not fifo.exists():
            os.mkfifo(fifo)
        switches = Switches(d / ARM_LOG)
    except OSError as e:
        raise ConfigError(f"--fault-injection {directory}: {e.strerror}") from None
    threading.Thread(target=_listen, args=(fifo, switches), daemon=True, name="faults").start()
    switches.log("ready", pid=os.getpid())
    return switches


class _Robot:
    def __init__(self, robot: Any, switches: Switches) -> None:
        self._robot, self._s = robot, switches
        self._last: RobotState | None = None
        self.name = robot.name
        self.joint_names = robot.joint_names

    def __getattr__(self, name: str) -> Any:
        return getattr(self._robot, name)

    def connect(self) -> None:
        self._robot.connect()

    def disconnect(self) -> None:
        self._robot.disconnect()

    def read_state(self) -> RobotState:
        if self._s.state_stall and self._last is not None:
            return self._last
        state = self._robot.read_state()
        if self._s.robot_fault and state.fault is None:
            state = dataclasses.replace(state, fault=f"{self._s.robot_fault} (injected)")
        self._last = state
        return state

    def command(self, cmd: JointCommand) -> None:
        self._s.log("command")
        self._robot.command(cmd)

    def hold(self) -> None:
        self._s.log("hold")
        self._robot.hold()


class _Camera:
    def __init__(self, camera: Any, switches: Switches) -> None:
        self._camera, self._s = camera, switches
        self._last: Frame | None = None
        self.name = camera.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._camera, name)

    @property
    def intrinsics(self) -> Any:
        return self._camera.intrinsics

    def connect(self) -> None:
        self._camera.connect()

    def disconnect(self) -> None:
        self._camera.disconnect()

    def latest(self) -> Frame | None:
        if self._s.camera_stall:
            return self._last
        self._last = self._camera.latest()
        return self._last


class _Policy:
    def __init__(self, policy: Any, switches: Switches) -> None:
        self._policy, self._s = policy, switches
        self.stages = policy.stages

    @property
    def mask(self) -> np.ndarray:
        return self._policy.mask

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def step(self, obs: Any, mark: Callable[[str], None]) -> np.ndarray:
        s = self._s
        if s.hang_s:
            hang, s.hang_s = s.hang_s, 0.0
            time.sleep(hang)
        if s.slow_s:
            time.sleep(s.slow_s)
        action = self._policy.step(obs, mark)
        if s.nonfinite:
            return np.full_like(np.asarray(action, dtype=np.float32), np.nan)
        return action


def wrap(
    switches: Switches, make_drivers: Callable[..., Drivers], make_policy: Callable[[Any], Any]
) -> tuple[Callable[..., Drivers], Callable[[Any], Any]]:
    """`Run`'s driver and policy factories with the shims around what they build."""

    def drivers(cfg: Any, bundle: Any) -> Drivers:
        d = make_drivers(cfg, bundle)
        switches.camera = d.camera
        return dataclasses.replace(
            d, robot=_Robot(d.robot, switches), camera=_Camera(d.camera, switches)
        )

    def policy(run: Any) -> Any:
        return _Policy(make_policy(run), switches)

    return drivers, policy
