"""Thread placement: what each [inference] placement pins, the helper threads really
started on the first core and the loop thread back on all of them, and the pick."""

from __future__ import annotations

import os
import threading

import pytest

from grasprt.config import InferenceSettings
from grasprt.runtime import realtime
from grasprt.runtime.placement import measure_placement, options

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
multi = pytest.mark.skipif(len(CORES) < 2, reason="needs two cores")


@multi
def test_each_placement_pins_what_it_says() -> None:
    first, last = {CORES[0]}, {CORES[-1]}
    assert realtime.placement_cpus("shared", 1) == (None, None)
    assert realtime.placement_cpus("auto", 1) == (last, None)
    assert realtime.placement_cpus("auto", 2) == (None, None)
    assert realtime.placement_cpus("split", 2) == (last, first)
    assert realtime.placement_cpus("split", 1) == (last, first)


@multi
def test_split_starts_helpers_on_the_first_core_and_frees_the_loop_thread() -> None:
    before = os.sched_getaffinity(0)
    loop_cpus, helper_cpus = realtime.placement_cpus("split", 2)
    prio = realtime.LoopPriorities(True, loop_cpus, helper_cpus)
    seen: dict[str, set[int]] = {}
    try:
        prio.before_threads()
        # A thread started now (a camera's, the recorder's) inherits the helper pin.
        t = threading.Thread(target=lambda: seen.update(helper=os.sched_getaffinity(0)))
        t.start()
        t.join()
        prio.in_loop()
        seen["loop"] = os.sched_getaffinity(0)
    finally:
        prio.after_run()
    assert seen["helper"] == helper_cpus
    assert seen["loop"] == loop_cpus
    assert os.sched_getaffinity(0) == before
    assert any("camera and recorder" in a for a in prio.summary()["applied"])


def _fig(p50: float, p99: float) -> dict:
    s = {"p50": p50, "p99": p99}
    return {"cycle_ms": s, "lateness_ms": s, "photon_to_command_ms": s, "overruns": 0}


def test_the_lowest_cycle_p99_is_chosen_and_every_option_is_kept() -> None:
    # The probe stands in for the bench's short loop runs (which need minutes of wall
    # clock): this checks the choice and the bookkeeping, not the loop.
    base = InferenceSettings(intra_op_threads=2)
    figures = {"shared": _fig(3.0, 9.0), "split": _fig(3.5, 4.0)}
    calls = []

    def probe(inf: InferenceSettings, cycles: int, rate: float) -> dict:
        calls.append((inf.placement, inf.intra_op_threads))
        if inf.intra_op_threads == 1:
            return _fig(5.0, 6.0)
        return figures[inf.placement]

    prio = realtime.LoopPriorities(False)
    place = measure_placement(base, probe, prio)
    assert calls == [("shared", 2), ("split", 2), ("split", 1)]
    assert place.chosen.placement == "split" and place.chosen.intra_op_threads == 2
    assert set(place.summary()["options"]) == set(options(base))
    assert (prio.cpus, prio.helper_cpus) == (None, None)  # put back after probing
