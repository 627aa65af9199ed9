"""The loop's time sources.

The loop never calls ``time`` directly: it takes a :class:`grasprt.types.Clock`. On
hardware that is :class:`MonotonicClock`; in simulation it can be :class:`SimClock`,
which jumps instead of sleeping, so evaluations run the very same loop code faster than
real time and deterministically.
"""

from __future__ import annotations

import threading
import time


class MonotonicClock:
    """``time.monotonic`` with a coarse sleep and a short spin for the last stretch.

    A plain ``time.sleep`` wakes up 0.1-0.4 ms late on an idle non-RT kernel; spinning
    the last ``spin_s`` brings that to a few microseconds (REFERENCE.md, loop timing).
    """

    def __init__(self, spin_s: float = 0.001) -> None:
        self.spin_s = spin_s

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        remaining = t - time.monotonic()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.monotonic() < t:
            # sleep(0) lets go of the GIL: a camera thread due in this last stretch
            # delivers its frame now, not after the loop has taken the previous one.
            time.sleep(0)


class SimClock:
    """Simulated time: ``sleep_until`` advances time at once. Thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep_until(self, t: float) -> None:
        with self._lock:
            if t > self._t:
                self._t = t

    def advance(self, dt: float) -> None:
        with self._lock:
            self._t += dt
