"""Whether to pre-warm the models before each slot, chosen by measurement
(``grasprt bench --tune``, after the placement).

Called once a period, the models run on caches other work has taken and on engine
threads that have gone to sleep (the bench's ``models_at_cadence_ms`` against
``models_only_ms``). ``[inference] prewarm_ms`` runs the last cycle's graphs again, ending
that long before each slot (runtime/loop.py): the cycle then finds them warm, at the cost of
one more model run a period. Whether that pays is this machine's to say, so short loops
at the loop's own rate run without and with it, alternated in blocks so a drift in the
machine's load hits both alike; it is adopted only if it lowers the cycle's p50 and
keeps its p99 and the wake-up lateness p99 no worse (a pre-warm that runs into the slot
would make the loop wake late).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from grasprt.config import InferenceSettings

# The pre-warm run ends this long before the slot (runtime/loop.py).
PREWARM_MS = 3.0
BLOCK_CYCLES = 60
BLOCKS = 2  # off, on, off, on
# The lateness p99 a pre-warm may add before it counts against it (timer jitter).
LATENESS_SLACK_MS = 0.1

# (settings, cycles, rate) -> (cycle ms, lateness ms) per cycle of a short loop.
CycleProbe = Callable[[InferenceSettings, int, float], tuple[np.ndarray, np.ndarray]]


@dataclass
class PrewarmChoice:
    chosen: InferenceSettings
    reason: str
    figures: dict[str, dict[str, float]]

    def summary(self) -> dict[str, Any]:
        return {
            "prewarm_ms": self.chosen.prewarm_ms,
            "tried_ms": PREWARM_MS,
            "reason": self.reason,
            "cycles_each": BLOCK_CYCLES * BLOCKS,
            "figures": self.figures,
        }


def _figures(cycle: list[np.ndarray], late: list[np.ndarray]) -> dict[str, float]:
    c, w = np.concatenate(cycle), np.concatenate(late)
    return {
        "cycle_p50_ms": float(np.median(c)),
        "cycle_p99_ms": float(np.percentile(c, 99)),
        "lateness_p99_ms": float(np.percentile(w, 99)),
    }


def measure_prewarm(base: InferenceSettings, probe: CycleProbe, rate_hz: float) -> PrewarmChoice:
    arms = {"off": replace(base, prewarm_ms=0.0), "on": replace(base, prewarm_ms=PREWARM_MS)}
    runs: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {k: ([], []) for k in arms}
    for _ in range(BLOCKS):
        for name, inf in arms.items():
            cycle, late = probe(inf, BLOCK_CYCLES, rate_hz)
            gc.collect()  # the probe's pipeline and its engine threads go before the next
            runs[name][0].append(cycle)
            runs[name][1].append(late)
    figs = {k: _figures(*v) for k, v in runs.items()}
    return _choose(arms, figs)


def _choose(
    arms: dict[str, InferenceSettings], figs: dict[str, dict[str, float]]
) -> PrewarmChoice:
    off, on = figs["off"], figs["on"]
    better = (
        on["cycle_p50_ms"] < off["cycle_p50_ms"]
        and on["cycle_p99_ms"] <= off["cycle_p99_ms"]
        and on["lateness_p99_ms"] <= off["lateness_p99_ms"] + LATENESS_SLACK_MS
    )
    pick = "on" if better else "off"
    said = "; ".join(
        f"{k}: cycle p50 {v['cycle_p50_ms']:.2f} p99 {v['cycle_p99_ms']:.2f}, "
        f"lateness p99 {v['lateness_p99_ms']:.2f} ms"
        for k, v in figs.items()
    )
    verdict = f"pre-warm, ending {PREWARM_MS:g} ms before each slot" if better else "no pre-warm"
    return PrewarmChoice(arms[pick], f"{verdict} ({said})", figs)
