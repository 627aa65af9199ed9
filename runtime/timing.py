"""Per-cycle stage timings, kept in a preallocated table, and their percentiles.

The loop marks stage boundaries with ``perf_counter`` (real compute time, whichever
clock drives the schedule) and writes one row per cycle; nothing is allocated per
cycle. Percentiles are computed once, at the end.
"""

from __future__ import annotations

import math
import time

import numpy as np

# The stages of one cycle, in order. They tile the cycle: their sum is the cycle time.
STAGES: tuple[str, ...] = (
    "frame_wait",
    "state_read",
    "model_view",
    "segmenter",
    "threshold",
    "controller",
    "perception",
    "limiter",
    "command",
    "record",
)

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def summarize(values_ms: np.ndarray) -> dict[str, float]:
    """p50/p90/p99/p999/max/mean of a 1-D array of milliseconds (zeros when empty)."""
    v = np.asarray(values_ms, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {k: 0.0 for k in (*PERCENTILES, "max", "mean")}
    out = {k: float(np.percentile(v, p)) for k, p in PERCENTILES.items()}
    out["max"] = float(v.max())
    out["mean"] = float(v.mean())
    return out


class StageTimer:
    """Marks stage boundaries within a cycle; rows go to a growable preallocated table."""

    def __init__(self, capacity: int = 4096, stages: tuple[str, ...] = STAGES) -> None:
        self.stages = stages
        self._index = {s: i for i, s in enumerate(stages)}
        self.table = np.full((capacity, len(stages)), np.nan, dtype=np.float64)
        self.cycle_ms = np.full(capacity, np.nan, dtype=np.float64)
        self.lateness_ms = np.full(capacity, np.nan, dtype=np.float64)
        # The frame's capture to the command handed to the driver (commanded cycles).
        self.photon_ms = np.full(capacity, np.nan, dtype=np.float64)
        self.n = 0
        self._t0 = 0.0
        self._last = 0.0

    def begin(self, lateness_s: float) -> None:
        if self.n >= self.table.shape[0]:
            # Doubling happens rarely (capacity is sized from episodes x steps up front).
            self.table = np.vstack([self.table, np.full_like(self.table, np.nan)])
            self.cycle_ms = np.concatenate([self.cycle_ms, np.full_like(self.cycle_ms, np.nan)])
            self.lateness_ms = np.concatenate(
                [self.lateness_ms, np.full_like(self.lateness_ms, np.nan)]
            )
            self.photon_ms = np.concatenate([self.photon_ms, np.full_like(self.photon_ms, np.nan)])
        self.table[self.n].fill(np.nan)
        self.photon_ms[self.n] = np.nan
        self.lateness_ms[self.n] = lateness_s * 1e3
        self._t0 = self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        """End ``stage`` now; its time is since the previous mark (or the cycle start)."""
        now = time.perf_counter()
        self.table[self.n, self._index[stage]] = (now - self._last) * 1e3
        self._last = now

    def elapsed_s(self) -> float:
        """The current cycle so far, its wake-up lateness included: of its period, used."""
        late = self.lateness_ms[self.n] if self.n < self.lateness_ms.size else 0.0
        return time.perf_counter() - self._t0 + float(late) / 1e3

    def note_photon(self, seconds: float) -> None:
        """This cycle's frame-capture-to-command time."""
        self.photon_ms[self.n] = seconds * 1e3

    def end(self) -> float:
        """Close the cycle row; returns the cycle time in ms."""
        ms = (time.perf_counter() - self._t0) * 1e3
        self.cycle_ms[self.n] = ms
        self.n += 1
        return ms

    def current_row(self) -> dict[str, float]:
        """The stages marked so far in the open cycle (for the flight record)."""
        row = self.table[self.n].tolist()  # one call, then plain floats
        return {s: v for s, v in zip(self.stages, row, strict=True) if math.isfinite(v)}

    def report(self) -> dict[str, object]:
        n = self.n
        return {
            "cycles": n,
            "cycle_ms": summarize(self.cycle_ms[:n]),
            "lateness_ms": summarize(self.lateness_ms[:n]),
            "photon_to_command_ms": summarize(self.photon_ms[:n]),
            "stages": {s: summarize(self.table[:n, i]) for i, s in enumerate(self.stages)},
        }
