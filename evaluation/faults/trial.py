"""One fault, one real `grasprt run` process: start it, wait for the arm to move,
inject, let it react, end it, and keep what the arm and the devices saw."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grasprt.errors import GrasprtError
from grasprt.evaluation.faults import inject as channel
from grasprt.evaluation.faults.emulators import HeartbeatMonitorEmulator, Pty, RobotiqEmulator

if TYPE_CHECKING:
    from grasprt.evaluation.faults import Fault

# Commands the arm must have had before the fault goes in: the loop is in its stride.
WARM_COMMANDS = 10
START_TIMEOUT_S = 90.0


@dataclass
class Trial:
    fault: Fault
    workdir: Path
    robot: str = "sim"
    base_args: tuple[str, ...] = ()
    # Arguments a fault's prepare step adds (its camera).
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    t_inject: float | None = None
    t_inject_wall: float | None = None  # the same moment on time.time (ROS logs)
    # The robot's side when it is a process of its own (the Sawyer twin), else None.
    side: Any = None
    # When the campaign ended a run still going (its own SIGTERM): holds after it are
    # the campaign's doing, not the fault's.
    t_end: float | None = None
    # The campaign ended a run still going after the observation window (SIGTERM).
    ended_by_campaign: bool = False
    heartbeat: HeartbeatMonitorEmulator | None = None
    gripper: RobotiqEmulator | None = None
    ptys: dict[str, Pty] = field(default_factory=dict)
    # Family-specific facts for the table (e.g. the file-size limit that was set).
    notes: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""
    # What a family started beside the run and must stop (busy neighbours).
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def record(self) -> Path:
        return self.workdir / "record" / "run.mcap"

    @property
    def summary_path(self) -> Path:
        return self.workdir / "run.json"

    @property
    def arm_log(self) -> Path:
        return self.workdir / channel.ARM_LOG

    # --- what the families call ------------------------------------------------------

    def send(self, line: str) -> None:
        """One word on the run's fault-injection FIFO; the injection time is now."""
        fifo = self.workdir / channel.CONTROL
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            raise GrasprtError(f"fault {self.fault.name}: the run does not listen ({e})") from None
        self.mark_injected()
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def mark_injected(self) -> None:
        if self.t_inject is None:
            self.t_inject = time.monotonic()
            self.t_inject_wall = time.time()

    def robot_fault(self, word: str) -> None:
        """A robot or camera fault: the twin's own fault topic when there is a twin,
        else the run's fault-injection shims."""
        if self.side is not None:
            self.side.fault(word, self.mark_injected)
        else:
            self.send(word)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.mark_injected()
        self.proc.send_signal(sig)

    def unplug(self, device: str) -> None:
        """Close a serial device's pty, as a pulled USB cable does."""
        emulator = self.heartbeat if device == "heartbeat" else self.gripper
        assert emulator is not None, f"fault {self.fault.name} has no {device}"
        emulator.stop()
        self.mark_injected()
        self.ptys[device].close()

    # --- the run ---------------------------------------------------------------------

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "grasprt.cli", "run", "--robot", self.robot]
        args += ["--record", str(self.record), "--json", str(self.summary_path)]
        args += ["--fault-injection", str(self.workdir), "--quiet", *self.base_args]
        if self.side is not None:
            args += list(self.side.args)
        if self.heartbeat is not None:
            args += ["--heartbeat", self.ptys["heartbeat"].name]
        if self.gripper is not None:
            args += ["--gripper", f"robotiq:{self.ptys['gripper'].name}"]
        return [*args, *self.extra_args, *self.fault.args]

    def _devices(self) -> None:
        if "heartbeat" in self.fault.devices:
            pty = self.ptys["heartbeat"] = Pty()
            self.heartbeat = HeartbeatMonitorEmulator(pty.master)
            self.heartbeat.start()
        if "gripper" in self.fault.devices:
            pty = self.ptys["gripper"] = Pty()
            self.gripper = RobotiqEmulator(pty.master, activation_polls=2)
            self.gripper.start()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "record").mkdir(exist_ok=True)
        os.mkfifo(self.workdir / channel.CONTROL)
        self._devices()
        if self.fault.prepare is not None:
            self.fault.prepare(self)
        if self.side is not None:
            self.side.before(self.workdir)
        preexec = None
        if self.fault.unprivileged and os.geteuid() == 0:
            # Root writes through any permission bit: without CAP_DAC_OVERRIDE it obeys
            # them like any user, so an unwritable path is unwritable.
            preexec = drop_dac_override
        env = {**os.environ, **(self.side.env if self.side else {}), **self.env}
        with open(self.workdir / "stderr.txt", "wb") as stderr:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                start_new_session=True,  # its own process group: our signals reach it alone
                preexec_fn=preexec,
            )

    def wait_ready(self, commands: int = WARM_COMMANDS) -> bool:
        """True once the arm has had `commands` commands; False if the run ended first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if count_ops(self.arm_log, "command") >= commands:
                return True
            time.sleep(0.02)
        raise GrasprtError(f"fault {self.fault.name}: the run never started commanding")

    def finish(self) -> int:
        """Wait out the observation window; end a run still going; its exit status."""
        assert self.proc is not None
        try:
            return self.proc.wait(self.fault.observe_s)
        except subprocess.TimeoutExpired:
            pass
        self.ended_by_campaign = True
        self.t_end = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20.0)
        except subprocess.TimeoutExpired:
            self.kill_group()
            return self.proc.wait(5.0)

    def kill_group(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        self.kill_group()
        for stop in self.cleanup:
            stop()
        if self.side is not None:
            self.side.after()
        for emulator in (self.heartbeat, self.gripper):
            if emulator is not None:
                emulator.stop()
        for pty in self.ptys.values():
            pty.close()
        with contextlib.suppress(OSError):
            self.stderr = (self.workdir / "stderr.txt").read_text(errors="replace")


def drop_dac_override() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE from the bounding set, so the
    program it becomes, root or not, has it in no set (capabilities(7))."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override = 24, 1
    if libc.prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")


def read_ops(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as e:
        if e.errno == errno.ENOENT:
            return []
        raise
    ops = []
    for line in text.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            ops.append(json.loads(line))
    return ops


def count_ops(path: Path, op: str) -> int:
    return sum(1 for o in read_ops(path) if o.get("op") == op)
