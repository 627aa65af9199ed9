"""`grasprt soak`: one long run of the real loop, watched for what grows.

A benchmark, not a test: it reports, it does not judge (the targets are printed beside
the figures). One ``Run`` for all N cycles, as a long shift on the arm would be, with
its record written as `run --record` writes it. Every `sample_every` cycles it notes
the process's resident memory, open file descriptors and threads (the kernel's count:
ONNX Runtime's and the recorder's threads too), and the record's size; afterwards
it cuts the loop's own timing into windows (lateness and cycle time percentiles, late
cycles) so a slow drift shows as a trend.

The memory slope is fitted after the warm-up (the first `warmup` fraction of the
cycles: sessions allocate, the record's first chunks, the allocator finds its level),
in MB per 10^4 cycles. On the simulator's clock no cycle waits, so the lateness there is
on simulated time (always 0 unless the sim's own pace slips); `--clock wall` runs the
bundle's rate in real time and its lateness is the real one.
"""

from __future__ import annotations

import itertools
import math
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grasprt.config import RunConfig
from grasprt.runtime.bench import BenchParts, LoopRun, run_loop
from grasprt.runtime.timing import summarize

# grasprt.evaluation's figure; the runtime does not import the layer above it.
SIM_CLOCK_HEARTBEAT_S = 30.0
RSS_SLOPE_TARGET_MB = 1.0  # per 10^4 cycles after warm-up (issue 19)
# Episodes end early in a grasp (the reference controller: ~20-50 steps); the run is
# sized for the shortest and stopped at N cycles.
SHORTEST_EPISODE = 15


def rss_mb() -> float:
    """Resident memory now, MB (/proc; elsewhere the peak, which can only rise)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def native_threads() -> int:
    """Threads of this process as the kernel counts them (Python's and native ones)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


@dataclass
class Sample:
    cycle: int
    wall_s: float
    rss_mb: float
    fds: int | None
    threads: int
    record_bytes: int


@dataclass
class Sampler:
    """Called after every commanded cycle (the loop's on_cycle); samples every Nth."""

    every: int
    record: Path | None
    samples: list[Sample] = field(default_factory=list)
    cycles: int = 0
    started: float = field(default_factory=time.perf_counter)
    on_progress: Callable[[int], None] | None = None

    def __call__(self, _episode: int, _step: int, _info: dict) -> None:
        self.cycles += 1
        if self.cycles == 1 or self.cycles % self.every == 0:
            self.take()
        if self.on_progress is not None:
            self.on_progress(self.cycles)

    def take(self) -> None:
        size = 0
        if self.record is not None:
            try:
                size = self.record.stat().st_size
            except OSError:
                size = 0
        self.samples.append(
            Sample(
                self.cycles,
                time.perf_counter() - self.started,
                rss_mb(),
                open_fds(),
                native_threads(),
                size,
            )
        )


def soak_config(cfg: RunConfig, cycles: int, record: Path | None) -> RunConfig:
    steps = cfg.max_steps or 150
    watchdog = cfg.watchdog
    if cfg.sim_clock and watchdog.heartbeat_s < SIM_CLOCK_HEARTBEAT_S:
        # As in `grasprt eval`: on the sim clock the wall-clock heartbeat would measure
        # only how busy the machine is, and one trip ends the whole soak.
        watchdog = replace(watchdog, heartbeat_s=SIM_CLOCK_HEARTBEAT_S)
    return replace(
        cfg,
        watchdog=watchdog,
        episodes=math.ceil(cycles / min(steps, SHORTEST_EPISODE)) + 1,
        max_steps=steps,
        record=None if record is None else str(record),
        json=None,
    )


def run_soak(
    cfg: RunConfig,
    parts: BenchParts,
    cycles: int,
    *,
    record: Path | None,
    windows: int = 20,
    warmup: float = 0.1,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Soak `cycles` cycles of the real loop; the figures as one JSON-ready dict."""
    every = max(1, cycles // 200)
    sampler = Sampler(every, record, on_progress=on_progress)
    loop = run_loop(
        soak_config(cfg, cycles, record),
        parts,
        rate_hz=None,
        on_cycle=sampler,
        cycles=cycles,
    )
    sampler.take()
    wall = time.perf_counter() - sampler.started
    return analyse(loop, sampler.samples, wall, windows=windows, warmup=warmup, clock=cfg.clock)


def analyse(
    loop: LoopRun,
    samples: list[Sample],
    wall_s: float,
    *,
    windows: int,
    warmup: float,
    clock: str,
) -> dict[str, Any]:
    s = loop.report.summary()
    n = int(loop.cycle_ms.size)
    last = samples[-1]
    return {
        "cycles": n,
        "clock": clock,
        # A signal ends a soak early and keeps its figures (the run holds the arm first);
        # the stop at N cycles is the soak's own end, not a stop.
        "stopped": _signal_stop(loop.report.stopped),
        "wall_s": wall_s,
        "cycles_per_s": n / wall_s if wall_s > 0 else 0.0,
        "period_ms": loop.period_s * 1e3,
        "overruns": s["overruns"],
        "faults": s["faults"],
        "holds": s["holds"],
        "perception_holds": s.get("perception_holds", {}),
        "episodes": s["episodes"],
        "dropped_records": s["dropped_records"],
        "record_failure": s["record_failure"],
        "memory": memory_figures(samples, warmup),
        "fds": _range([x.fds for x in samples if x.fds is not None]),
        "threads": _range([x.threads for x in samples]),
        "record": {
            "bytes": last.record_bytes,
            "bytes_per_cycle": last.record_bytes / last.cycle if last.cycle else 0.0,
            "write_mb_per_s": last.record_bytes / 1e6 / last.wall_s if last.wall_s > 0 else 0.0,
        },
        "cycle_ms": s["cycle_ms"],
        "lateness_ms": s["lateness_ms"],
        "windows": time_windows(loop, windows),
        "samples": [vars(x) for x in samples],
        "targets": {
            "rss_slope_mb_per_1e4": {
                "target": f"< {RSS_SLOPE_TARGET_MB} MB per 10^4 cycles after warm-up",
            },
            "overruns": {"target": "0"},
        },
    }


def _signal_stop(stopped: str | None) -> str | None:
    return stopped if stopped in signal.Signals.__members__ else None


def memory_figures(samples: list[Sample], warmup: float) -> dict[str, Any]:
    """Resident memory at start, after warm-up and at the end, and the fitted slope."""
    cyc = np.array([x.cycle for x in samples], dtype=np.float64)
    rss = np.array([x.rss_mb for x in samples], dtype=np.float64)
    after = cyc >= warmup * cyc[-1]
    slope = None
    if after.sum() >= 3 and np.ptp(cyc[after]) > 0:
        slope = float(np.polyfit(cyc[after], rss[after], 1)[0] * 1e4)
    return {
        "start_mb": float(rss[0]),
        "after_warmup_mb": float(rss[after][0]) if after.any() else None,
        "end_mb": float(rss[-1]),
        "peak_mb": float(rss.max()),
        "warmup_cycles": int(warmup * cyc[-1]),
        "slope_mb_per_1e4_cycles": slope,
    }


def _range(values: list[int]) -> dict[str, int | None]:
    if not values:
        return {"start": None, "end": None, "min": None, "max": None}
    return {"start": values[0], "end": values[-1], "min": min(values), "max": max(values)}


def time_windows(loop: LoopRun, windows: int) -> list[dict[str, Any]]:
    """The run cut into `windows` equal spans of cycles: lateness and cycle time in each."""
    n = loop.cycle_ms.size
    edges = np.linspace(0, n, min(windows, max(n, 1)) + 1).astype(int)
    period_ms = loop.period_s * 1e3
    out = []
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        late = loop.lateness_ms[a:b]
        late = late[np.isfinite(late)]
        cyc = loop.cycle_ms[a:b]
        cyc = cyc[np.isfinite(cyc)]
        out.append(
            {
                "first_cycle": int(a),
                "cycles": int(b - a),
                "lateness_ms": summarize(late),
                "cycle_ms": summarize(cyc),
                # Woke a period or more late: a missed slot.
                "late_cycles": int((late >= period_ms).sum()),
            }
        )
    return out
