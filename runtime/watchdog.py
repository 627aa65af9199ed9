"""Watchdogs: stale inputs, overrun streaks, and a loop that stops beating.

The first two are checked by the loop itself each cycle (pure, on the loop's clock).
The heartbeat watchdog is a separate thread on real monotonic time, because the
failures it is for (a hung inference, a deadlock, a long GC pause) stop the loop
itself and happen in real time even in a simulation.

What they do follows the trusted stacks (``../shared/REFERENCE.md``): MoveIt Servo
halts when its input is older than ``incoming_command_timeout``, ros2_control's
``cmd_timeout`` holds position, and Intera falls back to holding when commands stop.
A short gap holds the arm for the cycle; a long one ends the episode.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from grasprt.config import WatchdogSettings, check_number
from grasprt.errors import ConfigError


@dataclass(frozen=True)
class Verdict:
    action: Literal["ok", "hold", "stop"]
    # Why; None only when there is nothing to say. An "ok" may carry a note (an
    # overrun that is not yet a streak) worth logging.
    reason: str | None = None


_RANK = {"ok": 0, "hold": 1, "stop": 2}


def _age_verdict(
    what: str,
    now: float,
    stamp: float | None,
    started_at: float,
    hold_s: float,
    stop_s: float,
    future_s: float,
) -> Verdict:
    if stamp is None:
        # Nothing yet counts from the start: a source that never delivers must still
        # end in a stop, not hold forever.
        age = now - started_at
        if age > stop_s:
            return Verdict("stop", f"no {what} for {age:.2f} s since start")
        if age > hold_s:
            return Verdict("hold", f"no {what} for {age:.2f} s since start")
        return Verdict("hold", f"no {what} yet")
    if not math.isfinite(stamp):
        return Verdict("stop", f"non-finite {what} stamp: {stamp}")
    age = now - stamp
    if age < -future_s:
        return Verdict(
            "stop",
            f"{what} stamp is {-age:.3f} s ahead of the loop clock (another clock?)",
        )
    if age > stop_s:
        return Verdict("stop", f"{what} is {age:.2f} s old (limit {stop_s:.2f} s)")
    if age > hold_s:
        return Verdict("hold", f"{what} is {age:.2f} s old (hold above {hold_s:.2f} s)")
    return Verdict("ok")


def check_staleness(
    now: float,
    frame_stamp: float | None,
    state_stamp: float | None,
    started_at: float,
    cfg: WatchdogSettings,
) -> Verdict:
    """Judge the ages of the newest camera frame and robot state on the loop's clock.

    "hold": do not act on them this cycle; "stop": end the episode with a fault.
    """
    if not (math.isfinite(now) and math.isfinite(started_at)):
        return Verdict("stop", f"non-finite loop time: now={now}, started_at={started_at}")
    verdicts = [
        _age_verdict(
            "camera frame",
            now,
            frame_stamp,
            started_at,
            cfg.frame_hold_s,
            cfg.frame_stop_s,
            cfg.future_tolerance_s,
        ),
        _age_verdict(
            "robot state",
            now,
            state_stamp,
            started_at,
            cfg.state_hold_s,
            cfg.state_stop_s,
            cfg.future_tolerance_s,
        ),
    ]
    worst = max(_RANK[v.action] for v in verdicts)
    if worst == 0:
        return Verdict("ok")
    reasons = [v.reason for v in verdicts if _RANK[v.action] == worst and v.reason]
    action: Literal["ok", "hold", "stop"] = "stop" if worst == 2 else "hold"
    return Verdict(action, "; ".join(reasons))


class OverrunCounter:
    """Counts missed slots; a streak of overrunning cycles is a fault.

    ros2_control only logs overruns; we stop after a streak, since a controller that
    steadily runs late acts on old frames and was trained for another rate.
    """

    def __init__(self, streak_limit: WatchdogSettings | int = 5) -> None:
        if isinstance(streak_limit, WatchdogSettings):
            streak_limit = streak_limit.overrun_streak
        if isinstance(streak_limit, bool) or not isinstance(streak_limit, int) or streak_limit < 1:
            raise ConfigError(f"overrun streak limit must be a whole number >= 1: {streak_limit!r}")
        self.streak_limit = streak_limit
        self.streak = 0
        self.total_missed = 0
        self.overrun_cycles = 0

    def update(self, missed_slots: int) -> Verdict:
        if missed_slots < 0:
            raise ValueError(f"missed_slots must be >= 0, got {missed_slots}")
        if missed_slots == 0:
            self.streak = 0
            return Verdict("ok")
        self.streak += 1
        self.overrun_cycles += 1
        self.total_missed += missed_slots
        if self.streak >= self.streak_limit:
            return Verdict(
                "stop",
                f"{self.streak} overrunning cycles in a row "
                f"({self.total_missed} slots missed in all)",
            )
        return Verdict(
            "ok", f"missed {missed_slots} slot(s) (streak {self.streak}/{self.streak_limit})"
        )


class HeartbeatWatchdog:
    """Calls ``on_trip`` once if the loop stops calling :meth:`beat` for ``timeout_s``.

    The loop passes ``CommandGate.latch``, which holds the arm from this thread even
    while the loop thread is stuck.
    """

    def __init__(
        self,
        timeout_s: float,
        on_trip: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_number("watchdog", "heartbeat timeout_s", timeout_s, low=0, low_open=True)
        self.timeout_s = float(timeout_s)
        self._on_trip = on_trip
        self._clock = clock
        # Checking five times per timeout bounds detection at 1.2 x timeout.
        self._period = self.timeout_s / 5.0
        self._last = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tripped = False
        self.trip_reason: str | None = None
        self.trip_error: str | None = None

    @property
    def tripped(self) -> bool:
        return self._tripped

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("HeartbeatWatchdog already started")
        self._last = self._clock()
        self._thread = threading.Thread(
            target=self._run, name="grasprt-heartbeat-watchdog", daemon=True
        )
        self._thread.start()

    def beat(self) -> None:
        # One float store: a single assignment is atomic under the GIL, so no lock.
        self._last = self._clock()

    def stop(self, join_timeout_s: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(join_timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            age = self._clock() - self._last
            if age > self.timeout_s:
                if self._stop.is_set():
                    # stop() came while we were checking: the loop ended on purpose.
                    return
                self._tripped = True
                self.trip_reason = f"loop heartbeat lost for {age:.2f} s"
                try:
                    self._on_trip(self.trip_reason)
                except Exception as err:
                    # The thread has no caller to raise to; keep it for the report.
                    self.trip_error = f"{type(err).__name__}: {err}"
                return
