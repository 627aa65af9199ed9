"""An absolute-deadline rate keeper that skips missed slots instead of bursting.

Slot k is due at ``start + k * period`` on the loop's clock, so small delays never
accumulate into drift (a relative ``sleep(period)`` would). When a cycle overruns past
one or more slots, ros2_control's way is followed: count the missed cycles and move
the deadline forward by whole periods rather than running them back to back. Bursting
would feed the controller cycles closer together than the rate it was trained at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grasprt.errors import ConfigError
from grasprt.types import Clock

# A due time this close to now counts as met: float sums on a simulated clock
# (0.1 + 0.1 + 0.1) land a few ulps off the product (3 * 0.1).
_EPS_S = 1e-9


@dataclass(frozen=True)
class Tick:
    k: int  # slot index since start
    due: float  # when the slot was due, on the loop's clock
    woke: float  # when wait() returned
    lateness_s: float  # woke - due (>= 0 on a clock that never wakes early)
    missed: int  # slots skipped just before this one


class RateKeeper:
    def __init__(self, clock: Clock, period_s: float) -> None:
        if (
            isinstance(period_s, bool)
            or not isinstance(period_s, int | float)
            or not math.isfinite(period_s)
            or period_s <= 0
        ):
            raise ConfigError(f"rate keeper: period must be a finite number > 0, got {period_s!r}")
        self.clock = clock
        self.period_s = float(period_s)
        self.t0: float | None = None
        self._next_k = 0
        self.ticks = 0
        self.overruns = 0  # missed slots in all
        self.overrun_cycles = 0  # waits that had to skip at least one slot

    def due(self, k: int) -> float:
        if self.t0 is None:
            raise RuntimeError("RateKeeper.start() first")
        # Computed from t0 each time, never summed, so error does not grow with k.
        return self.t0 + k * self.period_s

    def start(self, t0: float | None = None) -> None:
        """Slot 0 is due at `t0` (default: now). Restarting resets the counts."""
        self.t0 = self.clock.now() if t0 is None else float(t0)
        self._next_k = 0
        self.ticks = 0
        self.overruns = 0
        self.overrun_cycles = 0

    def next_due(self) -> float:
        """When the slot the next wait() aims at is due (unless it has to skip)."""
        return self.due(self._next_k)

    def wait(self, late_ok_s: float = 0.0) -> Tick:
        """Sleep until the next slot and return it (starts the schedule if needed).

        A slot already past is skipped, unless it is no more than `late_ok_s` past: then
        it runs now, late (its lateness says by how much), rather than not at all."""
        if self.t0 is None:
            self.start()
        k = self._next_k
        now = self.clock.now()
        # Slot 0 is the start itself: the moments between start() and the first wait()
        # are not an overrun, unless a whole period went by.
        grace = self.period_s if k == 0 else max(0.0, late_ok_s)
        missed = 0
        if now > self.due(k) + grace + _EPS_S:
            # Skip to the first slot not yet past (one due right now still counts).
            assert self.t0 is not None
            k_future = max(k + 1, math.floor((now - self.t0) / self.period_s))
            while self.due(k_future) < now - _EPS_S:
                k_future += 1
            missed = k_future - k
            k = k_future
        due = self.due(k)
        self.clock.sleep_until(due)
        woke = self.clock.now()
        self._next_k = k + 1
        self.ticks += 1
        if missed:
            self.overruns += missed
            self.overrun_cycles += 1
        return Tick(k=k, due=due, woke=woke, lateness_s=woke - due, missed=missed)
