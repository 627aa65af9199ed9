"""The one door to ``robot.command``: once latched shut, nothing moves the arm again.

The loop sends each limited target through :class:`CommandGate`; the heartbeat
watchdog's thread latches the same gate when the loop stops beating. A latch must work
even while the loop thread is stuck inside a driver call, so the gate never holds its
lock around a robot call: a latch that waited for a hung ``robot.command`` could not
stop the arm. Instead, a command that was already on its way when the latch came is
followed by one more hold, so the last word the robot hears is always "hold".
"""

from __future__ import annotations

import math
import threading

import numpy as np

from grasprt.types import JointCommand, Robot


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


class CommandGate:
    def __init__(self, robot: Robot) -> None:
        self._robot = robot
        self._lock = threading.Lock()
        self._latched = False
        self._reason: str | None = None
        self.sent = 0
        self.refused_after_latch = 0
        # Commands already on their way when the latch came (each followed by a hold).
        self.raced_latch = 0
        # Cycles the loop asked to hold (stale input and the like), not counting latches.
        self.holds = 0
        self.last_hold_reason: str | None = None
        # Every robot.hold() the gate made: cycle holds, the latch, and re-holds.
        self.robot_holds = 0
        # The last error robot.hold() raised, kept because a watchdog thread has no one
        # to raise it to.
        self.hold_error: str | None = None

    @property
    def latched(self) -> bool:
        return self._latched

    @property
    def reason(self) -> str | None:
        """Why the gate latched (the first reason given); None while open."""
        return self._reason

    def send(self, cmd: JointCommand) -> bool:
        """Pass one command to the robot. False if the gate is latched or the send failed."""
        with self._lock:
            if self._latched:
                self.refused_after_latch += 1
                return False
        problem = self._check(cmd)
        if problem is not None:
            # The limiter never produces this; if it ever did, a bug upstream is loose.
            self.latch(f"refused a bad command: {problem}")
            return False
        try:
            self._robot.command(cmd)
        except Exception as err:
            if self._finish_send():
                # Latched meanwhile: the latch's reason stands, but the failed command
                # may still have reached the robot after the latch's hold.
                self._robot_hold()
            else:
                self.latch(f"robot command failed: {_describe(err)}")
            return False
        if self._finish_send():
            # The latch's hold may have reached the robot before this command did.
            self._robot_hold()
            return False
        with self._lock:
            self.sent += 1
        return True

    def _check(self, cmd: JointCommand) -> str | None:
        try:
            q = np.asarray(cmd.q, dtype=np.float64)
        except (TypeError, ValueError):
            return f"q={cmd.q!r} is not numbers"
        values = q.tolist() if q.ndim == 1 else None
        # math.isfinite over the list: on caches the models just took, one numpy call
        # on seven numbers costs tens of microseconds.
        if values is None or len(values) != len(self._robot.joint_names):
            return f"q={q.tolist()}"
        if not all(math.isfinite(v) for v in values):
            return f"q={values}"
        return None

    def _finish_send(self) -> bool:
        """True if the gate latched while it was in flight."""
        with self._lock:
            if self._latched:
                self.raced_latch += 1
            return self._latched

    def hold(self, reason: str) -> None:
        """Hold the arm this cycle without latching (the loop may go on next cycle)."""
        with self._lock:
            self.holds += 1
            self.last_hold_reason = reason
        if not self._robot_hold():
            self.latch(f"robot hold failed: {self.hold_error}")

    def latch(self, reason: str) -> None:
        """Hold the arm and refuse every later command. Safe from any thread; the first
        reason is kept and only the first call holds."""
        with self._lock:
            if self._latched:
                return
            self._latched = True
            self._reason = reason
        self._robot_hold()

    def _robot_hold(self) -> bool:
        with self._lock:
            self.robot_holds += 1
        try:
            self._robot.hold()
        except Exception as err:
            # Nothing above the gate can do better than a hold; record and go on.
            self.hold_error = _describe(err)
            return False
        return True
