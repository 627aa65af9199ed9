"""The models timed at the loop's own cadence: one call a period, idle in between.

Back to back (bench.models_only), each session runs on warm caches with its worker
threads awake. The loop runs them once a period: between two cycles its cores sleep,
other work (another process, the host) takes the caches, and the engine's workers go
idle. This times the very sessions the loop uses on the loop's schedule (the clock's
own sleep, as the loop waits), so the report shows how much of a stage's in-loop time
over its back-to-back time comes from being called once a period, and how much from the
loop itself. Nothing here asserts a time.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from grasprt.clock import MonotonicClock
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.timing import summarize


def models_at_cadence(
    pipeline: Pipeline, view: np.ndarray, rate_hz: float, slots: int
) -> dict[str, Any]:
    """p50 ms of each session, one call (the two-model pair: one pair) a period.

    With a fused graph, slots alternate: the segmenter then the controller in one
    slot, the fused graph alone in the next, as each path runs them in a cycle."""
    np.copyto(pipeline.image[0], view)
    pipeline.segmenter.run()
    pipeline.threshold()
    pipeline.controller.run()
    clock, period = MonotonicClock(), 1.0 / rate_hz
    times: dict[str, list[float]] = {"segmenter": [], "controller": []}
    if pipeline.fused is not None:
        times["fused"] = []
    start = clock.now() + period
    for k in range(slots):
        clock.sleep_until(start + k * period)
        if pipeline.fused is not None and k % 2:
            _timed(pipeline.fused.run, times["fused"])
            continue
        _timed(pipeline.segmenter.run, times["segmenter"])
        _timed(pipeline.controller.run, times["controller"])
    out: dict[str, Any] = {k: float(np.median(v)) * 1e3 for k, v in times.items() if v}
    out["sum"] = out["segmenter"] + out["controller"]
    out["rate_hz"] = rate_hz
    out["detail"] = {k: summarize(np.asarray(v) * 1e3) for k, v in times.items() if v}
    return out


def _timed(run: Any, store: list[float]) -> None:
    t = time.perf_counter()
    run()
    store.append(time.perf_counter() - t)
