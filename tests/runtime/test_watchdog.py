"""Staleness verdicts, overrun streaks, and the heartbeat watchdog on real threads."""

from __future__ import annotations

import math
import threading
import time

import pytest

from grasprt.config import WatchdogSettings
from grasprt.errors import ConfigError
from grasprt.runtime.watchdog import (
    HeartbeatWatchdog,
    OverrunCounter,
    Verdict,
    check_staleness,
)

CFG = WatchdogSettings()


# --- staleness ----------------------------------------------------------------------


def test_fresh_frame_and_state_are_ok() -> None:
    assert check_staleness(10.0, 9.95, 9.99, 0.0, CFG) == Verdict("ok")


@pytest.mark.parametrize(
    ("frame_age", "state_age", "action", "needle"),
    [
        (0.25, 0.0, "ok", None),  # exactly at the bound is still fine
        (0.3, 0.0, "hold", "camera frame is 0.30 s old"),
        (0.0, 0.25, "hold", "robot state is 0.25 s old"),
        (1.5, 0.0, "stop", "camera frame is 1.50 s old"),
        (0.0, 1.2, "stop", "robot state is 1.20 s old"),
        (0.5, 2.0, "stop", "robot state"),  # the worse of the two wins
    ],
)
def test_old_inputs_hold_then_stop(
    frame_age: float, state_age: float, action: str, needle: str | None
) -> None:
    now = 100.0
    v = check_staleness(now, now - frame_age, now - state_age, 0.0, CFG)
    assert v.action == action
    if needle is None:
        assert v.reason is None
    else:
        assert needle in v.reason


def test_both_stale_names_both() -> None:
    v = check_staleness(100.0, 99.5, 99.6, 0.0, CFG)
    assert v.action == "hold"
    assert "camera frame" in v.reason and "robot state" in v.reason


def test_a_camera_that_never_delivers_ends_in_a_stop() -> None:
    started = 50.0
    actions = [check_staleness(started + t, None, started + t, started, CFG) for t in (0.1, 0.5)]
    assert [v.action for v in actions] == ["hold", "hold"]
    v = check_staleness(started + 1.01, None, started + 1.01, started, CFG)
    assert v.action == "stop" and v.reason == "no camera frame for 1.01 s since start"


def test_a_stamp_from_another_clock_is_a_fault() -> None:
    v = check_staleness(10.0, 1000.0, 10.0, 0.0, CFG)
    assert v.action == "stop" and "ahead of the loop clock" in v.reason
    # A few milliseconds ahead (stamped just after the loop read its clock) is fine.
    assert check_staleness(10.0, 10.005, 10.0, 0.0, CFG).action == "ok"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_stamp_is_a_fault(bad: float) -> None:
    v = check_staleness(10.0, bad, 10.0, 0.0, CFG)
    assert v.action == "stop" and "non-finite camera frame stamp" in v.reason
    assert check_staleness(bad, 10.0, 10.0, 0.0, CFG).action == "stop"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frame_hold_s": 0},
        {"frame_hold_s": 2.0},  # above frame_stop_s
        {"state_stop_s": math.nan},
        {"state_hold_s": 1.0},  # equal to state_stop_s
        {"overrun_streak": 0},
        {"overrun_streak": 2.5},
        {"heartbeat_s": -1},
        {"future_tolerance_s": -0.1},
    ],
)
def test_nonsense_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        WatchdogSettings(**kwargs)


# --- overruns -----------------------------------------------------------------------


def test_an_overrun_streak_stops_and_a_clean_cycle_resets_it() -> None:
    counter = OverrunCounter(WatchdogSettings(overrun_streak=3))
    actions = [counter.update(m).action for m in (1, 2, 0, 1, 1)]
    assert actions == ["ok"] * 5
    assert counter.streak == 2 and counter.total_missed == 5 and counter.overrun_cycles == 4
    v = counter.update(3)
    assert v.action == "stop"
    assert v.reason == "3 overrunning cycles in a row (8 slots missed in all)"


def test_an_overrun_below_the_streak_is_noted() -> None:
    counter = OverrunCounter(5)
    assert counter.update(0) == Verdict("ok")
    v = counter.update(2)
    assert v.action == "ok" and v.reason == "missed 2 slot(s) (streak 1/5)"


def test_overrun_counter_refuses_nonsense() -> None:
    with pytest.raises(ConfigError):
        OverrunCounter(0)
    with pytest.raises(ValueError):
        OverrunCounter(3).update(-1)


# --- heartbeat (real time, real threads) ---------------------------------------------


class Trips:
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.event = threading.Event()

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.event.set()


def test_beats_keep_the_watchdog_quiet() -> None:
    trips = Trips()
    # Beats every 10 ms against a 0.5 s timeout: only a badly starved machine could
    # leave a gap that long, so this does not flake on a busy CI box.
    dog = HeartbeatWatchdog(0.5, trips)
    dog.start()
    end = time.monotonic() + 1.0  # two timeouts' worth of beating
    while time.monotonic() < end:
        dog.beat()
        time.sleep(0.01)
    dog.stop()
    assert trips.reasons == [] and not dog.tripped


def test_lost_beats_trip_exactly_once() -> None:
    trips = Trips()
    dog = HeartbeatWatchdog(0.1, trips)
    dog.start()
    dog.beat()
    # A generous bound only so a broken watchdog cannot hang the suite.
    assert trips.event.wait(5.0)
    time.sleep(0.3)  # it must not trip again
    dog.stop()
    assert len(trips.reasons) == 1 and dog.tripped
    assert trips.reasons[0].startswith("loop heartbeat lost for ")
    assert trips.reasons[0].endswith(" s")
    lost_for = float(trips.reasons[0].split()[-2])
    assert lost_for >= 0.1  # printed to 10 ms


def test_the_trip_runs_on_its_own_thread_while_the_loop_is_stuck() -> None:
    trips = Trips()
    caller: list[str] = []
    dog = HeartbeatWatchdog(
        0.1, lambda r: (caller.append(threading.current_thread().name), trips(r))
    )
    dog.start()
    stuck = threading.Lock()
    stuck.acquire()
    # The "loop" blocks on a lock nobody will release; the watchdog must trip anyway.
    assert not stuck.acquire(timeout=0.5)
    assert trips.event.wait(5.0)
    dog.stop()
    assert caller == ["grasprt-heartbeat-watchdog"]


def test_stop_joins_cleanly_and_never_trips_afterwards() -> None:
    trips = Trips()
    dog = HeartbeatWatchdog(0.1, trips)
    dog.start()
    dog.beat()
    dog.stop()
    assert dog._thread is not None and not dog._thread.is_alive()
    time.sleep(0.3)
    assert trips.reasons == [] and not dog.tripped


def test_a_failing_trip_callback_is_kept_not_raised() -> None:
    def boom(reason: str) -> None:
        raise RuntimeError("latch broke")

    dog = HeartbeatWatchdog(0.05, boom)
    dog.start()
    deadline = time.monotonic() + 5.0
    while dog.trip_error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    dog.stop()
    assert dog.tripped and dog.trip_error == "RuntimeError: latch broke"


def test_the_watchdog_uses_the_clock_it_is_given() -> None:
    # With a clock that never moves, silence is never long enough to trip.
    trips = Trips()
    dog = HeartbeatWatchdog(0.05, trips, clock=lambda: 7.0)
    dog.start()
    time.sleep(0.3)
    dog.stop()
    assert trips.reasons == []


def test_watchdog_refuses_a_bad_timeout_and_a_double_start() -> None:
    with pytest.raises(ConfigError):
        HeartbeatWatchdog(0.0, Trips())
    dog = HeartbeatWatchdog(1.0, Trips())
    dog.start()
    with pytest.raises(RuntimeError):
        dog.start()
    dog.stop()
