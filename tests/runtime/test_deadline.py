"""The rate keeper: exact on the simulated clock, ordering-only on the real one."""

from __future__ import annotations

import itertools
import math
import time

import pytest

from grasprt.clock import MonotonicClock, SimClock
from grasprt.errors import ConfigError
from grasprt.runtime.deadline import RateKeeper, Tick

# A power of two, so slot times are exact in binary floating point.
PERIOD = 0.125


class WorkingClock(SimClock):
    """A simulated clock where the loop's work takes simulated time."""

    def work(self, seconds: float) -> None:
        self.advance(seconds)


def test_on_time_cycles_are_exact_and_never_late() -> None:
    clock = WorkingClock(start=3.0)
    rk = RateKeeper(clock, PERIOD)
    rk.start()
    ticks = []
    for _ in range(6):
        ticks.append(rk.wait())
        clock.work(0.1)  # shorter than a period
    assert [t.k for t in ticks] == list(range(6))
    assert [t.due for t in ticks] == [3.0 + k * PERIOD for k in range(6)]
    assert all(t.woke == t.due and t.lateness_s == 0.0 and t.missed == 0 for t in ticks)
    assert rk.overruns == 0 and rk.overrun_cycles == 0 and rk.ticks == 6


def test_a_long_cycle_skips_to_the_next_future_slot() -> None:
    clock = WorkingClock()
    rk = RateKeeper(clock, PERIOD)
    rk.start()
    assert rk.wait().k == 0
    clock.work(2.5 * PERIOD)  # overruns slots 1 and 2
    tick = rk.wait()
    assert tick == Tick(k=3, due=3 * PERIOD, woke=3 * PERIOD, lateness_s=0.0, missed=2)
    clock.work(0.01)
    nxt = rk.wait()
    assert nxt.k == 4 and nxt.missed == 0
    assert rk.overruns == 2 and rk.overrun_cycles == 1


def test_a_slot_a_little_past_runs_late_when_allowed_and_is_skipped_otherwise() -> None:
    clock = WorkingClock()
    rk = RateKeeper(clock, PERIOD)
    rk.start()
    rk.wait()
    clock.work(PERIOD + 0.003)  # 3 ms into slot 1
    late = rk.wait(late_ok_s=PERIOD / 2)
    assert (late.k, late.missed) == (1, 0) and late.lateness_s == pytest.approx(0.003)
    clock.work(PERIOD + 0.003)  # 3 ms into slot 2, lateness not allowed: skipped
    assert (rk.wait().k, rk.overruns) == (3, 1)
    clock.work(PERIOD * 0.6 + PERIOD)  # past slot 4 by more than allowed: skipped too
    assert rk.wait(late_ok_s=PERIOD / 2).missed == 1


def test_no_burst_after_an_overrun() -> None:
    clock = WorkingClock()
    rk = RateKeeper(clock, PERIOD)
    rk.start()
    rk.wait()
    clock.work(10 * PERIOD + 0.01)
    woke = []
    for _ in range(5):
        woke.append(rk.wait().woke)
    # After the skip, cycles are a full period apart: none run back to back to catch up.
    gaps = [b - a for a, b in itertools.pairwise(woke)]
    assert gaps == [PERIOD] * 4
    assert rk.overruns == 10 and rk.overrun_cycles == 1


def test_a_cycle_that_ends_exactly_on_the_next_slot_is_on_time() -> None:
    clock = WorkingClock()
    rk = RateKeeper(clock, PERIOD)
    rk.start()
    rk.wait()
    clock.work(PERIOD)
    tick = rk.wait()
    assert tick.k == 1 and tick.missed == 0 and tick.lateness_s == 0.0
    clock.work(2 * PERIOD)  # lands exactly on slot 3: slot 2 is missed, 3 is on time
    tick = rk.wait()
    assert tick.k == 3 and tick.missed == 1


def test_float_sums_on_a_decimal_period_do_not_cause_false_overruns() -> None:
    clock = WorkingClock()
    rk = RateKeeper(clock, 0.1)
    rk.start()
    rk.wait()
    for k in range(1, 200):
        clock.work(0.1)  # summed 0.1s drift a few ulps from k * 0.1
        tick = rk.wait()
        assert tick.k == k and tick.missed == 0
    assert rk.overruns == 0


def test_every_overrun_is_counted_across_a_run() -> None:
    clock = WorkingClock()
    rk = RateKeeper(clock, PERIOD)
    rk.start()
    # Seconds of work per cycle: 0.3 s from slot 1 ends past slots 2 and 3, 0.6 s from
    # slot 6 past 7..10, and 0.13 s from slot 12 just past 13.
    work = [0.05, 0.3, 0.05, 0.05, 0.6, 0.05, 0.13]
    ks, missed = [], []
    for w in work:
        t = rk.wait()
        ks.append(t.k)
        missed.append(t.missed)
        clock.work(w)
    t = rk.wait()
    ks.append(t.k)
    missed.append(t.missed)
    assert missed == [0, 0, 2, 0, 0, 4, 0, 1]
    assert ks == [0, 1, 4, 5, 6, 11, 12, 14]
    assert rk.overruns == 7 and rk.overrun_cycles == 3


def test_slot_zero_waits_for_a_start_time_in_the_future() -> None:
    clock = WorkingClock(start=1.0)
    rk = RateKeeper(clock, PERIOD)
    rk.start(t0=2.0)
    tick = rk.wait()
    assert tick.k == 0 and tick.woke == 2.0 and clock.now() == 2.0


def test_slot_zero_is_skipped_only_after_a_whole_period() -> None:
    clock = WorkingClock()
    rk = RateKeeper(clock, PERIOD)
    rk.start()
    clock.work(0.5 * PERIOD)  # setup between start() and the first wait()
    first = rk.wait()
    assert first.k == 0 and first.missed == 0 and first.lateness_s == 0.5 * PERIOD
    rk.start()
    clock.work(1.5 * PERIOD)
    first = rk.wait()
    assert first.k == 2 and first.missed == 2


def test_wait_without_start_starts_now() -> None:
    clock = WorkingClock(start=5.0)
    rk = RateKeeper(clock, PERIOD)
    assert rk.wait() == Tick(k=0, due=5.0, woke=5.0, lateness_s=0.0, missed=0)


@pytest.mark.parametrize("period", [0, -0.1, math.nan, math.inf, "0.1"])
def test_a_bad_period_is_refused(period: object) -> None:
    with pytest.raises(ConfigError, match="period"):
        RateKeeper(SimClock(), period)  # type: ignore[arg-type]


def test_real_clock_slots_are_ordered_and_a_long_sleep_skips() -> None:
    # Only ordering is asserted: the machine's timing is not under test.
    period = 0.005
    rk = RateKeeper(MonotonicClock(), period)
    rk.start()
    ticks = [rk.wait() for _ in range(5)]
    time.sleep(10 * period)
    ticks.append(rk.wait())
    ticks.append(rk.wait())
    ks = [t.k for t in ticks]
    assert ks == sorted(set(ks))
    assert all(b.due > a.due for a, b in itertools.pairwise(ticks))
    assert all(t.woke >= t.due for t in ticks)
    slept_over = ticks[5]
    assert slept_over.missed >= 1 and slept_over.k == ticks[4].k + slept_over.missed + 1
    assert rk.overruns >= slept_over.missed
