"""Where the run's threads go, chosen by measurement (``grasprt bench --tune``).

On a 2-core PC the loop thread, the model's worker threads and the camera and recorder
threads share two cores. The options (``[inference] placement``, realtime.py):

- ``shared``, N threads: nothing pinned, the OS places everything;
- ``split``, N threads: the camera and recorder threads on the first core;
- ``split``, 1 thread: the model runs in the loop thread, pinned to the last core, the
  camera and recorder threads on the first: nothing shares the model's core.

Each runs a short loop on the wall clock, fed by the prerendered camera; the one with
the lowest cycle p99 (then p50) is the placement ``run`` uses (it is saved with the
pick). These are short runs: a difference of a few percent is noise, and the summary
keeps every option's figures so the reader can judge.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from grasprt.config import InferenceSettings
from grasprt.runtime import realtime

PLACEMENT_CYCLES = 150
PLACEMENT_RATE_HZ = 30.0

# (settings, cycles, rate) -> a LoopRun summary (the bench's run_loop).
LoopProbe = Callable[[InferenceSettings, int, float], dict[str, Any]]


@dataclass
class Placement:
    chosen: InferenceSettings
    reason: str
    options: dict[str, dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return {
            "measured": True,
            "chosen": self.chosen.placement,
            "threads": self.chosen.intra_op_threads,
            "reason": self.reason,
            "cycles_each": PLACEMENT_CYCLES,
            "rate_hz": PLACEMENT_RATE_HZ,
            "options": self.options,
        }


def options(base: InferenceSettings) -> dict[str, InferenceSettings]:
    out = {
        f"shared, {base.intra_op_threads} thread(s)": replace(base, placement="shared"),
        f"split, {base.intra_op_threads} thread(s)": replace(base, placement="split"),
    }
    if base.intra_op_threads != 1:
        out["split, 1 thread"] = replace(base, placement="split", intra_op_threads=1)
    return out


def _rank(fig: dict[str, Any]) -> tuple[float, float]:
    return fig["cycle_ms"]["p99"], fig["cycle_ms"]["p50"]


def measure_placement(
    base: InferenceSettings, probe: LoopProbe, prio: realtime.LoopPriorities
) -> Placement:
    figures: dict[str, dict[str, Any]] = {}
    keep = (prio.cpus, prio.helper_cpus)
    try:
        for name, inf in options(base).items():
            prio.cpus, prio.helper_cpus = realtime.placement_cpus(
                inf.placement, inf.intra_op_threads
            )
            s = probe(inf, PLACEMENT_CYCLES, PLACEMENT_RATE_HZ)
            gc.collect()  # the probe's pipeline goes before the next one is built
            figures[name] = {
                "cycle_ms": s["cycle_ms"],
                "lateness_ms": s["lateness_ms"],
                "photon_to_command_ms": s["photon_to_command_ms"],
                "overruns": s["overruns"],
            }
    finally:
        prio.cpus, prio.helper_cpus = keep
    opts = options(base)
    best = min(figures, key=lambda k: _rank(figures[k]))
    parts = "; ".join(
        f"{k}: p50 {v['cycle_ms']['p50']:.2f} p99 {v['cycle_ms']['p99']:.2f} ms"
        for k, v in figures.items()
    )
    return Placement(opts[best], f"{best}, the lowest cycle p99 ({parts})", figures)
