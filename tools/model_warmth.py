"""How fast the models go cold between runs, on this CPU: why a 10 Hz loop's models cost
their once-a-period figure (`models_at_cadence_ms`), not their back-to-back one.

    .venv/bin/python tools/model_warmth.py [--provider openvino] [--precision bf16]
                                           [--threads 2] [--json warmth.json]

Under the loop's real-time settings (`--sched fifo`, the default: SCHED_FIFO for this
thread and the engine's workers, locked memory, CPU wake latency 0 us; `--sched normal`:
the wake latency only), it times one cycle of models (state, segmenter, threshold,
controller, as the tuner does):

- after 100 ms idle, six runs in a row: how many runs a cold engine needs to warm up;
- a run, a gap (sleeping, or spinning on this thread), a run: the second run against the
  gap, to see how long the warmth lasts. A pre-warm (`[inference] prewarm_ms`) can only
  help the cycle if it ends less than that before the cycle's models start;
- a tiny run of the same engine (the controller alone, 0.06 ms) right before the cycle,
  after 100 ms idle and 3 ms after a pre-warm run: whether what has gone cold is the
  engine (its threads) rather than the caches.

A diagnostic, not a benchmark target: docs/bench.md has its figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import numpy as np

from grasprt.bundle import load_bundle
from grasprt.config import InferenceSettings
from grasprt.drivers.sim.views import held_out_views
from grasprt.errors import GrasprtError
from grasprt.runtime import realtime
from grasprt.runtime.cpu import cpu_info
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.quantize import gate_hinted
from grasprt.runtime.tuning import cycle_runner

GAPS_MS = (0.0, 0.05, 0.3, 1.0, 3.0, 10.0)
IDLE_S = 0.1  # a 10 Hz loop's period
REPEATS = 30


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def runs_in_a_row(one: Callable[[], None], n: int = 6) -> list[float]:
    rows = []
    for _ in range(REPEATS):
        time.sleep(IDLE_S)
        rows.append([_timed(one) for _ in range(n)])
    return np.median(np.asarray(rows), axis=0).tolist()


def after(one: Callable[[], None], before: Callable[[], None]) -> float:
    """p50 ms of `one` run right after `before`, each time after `IDLE_S` idle."""
    ms = []
    for _ in range(REPEATS):
        time.sleep(IDLE_S)
        before()
        ms.append(_timed(one))
    return float(np.median(ms))


def _then(*steps: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


def _measure(a: argparse.Namespace) -> dict[str, object]:
    bundle = load_bundle(a.bundle)
    cfg = InferenceSettings(
        provider=a.provider, precision=a.precision, intra_op_threads=a.threads, fused=True
    )
    gate = gate_hinted(bundle, cfg, held_out_views) if a.precision != "fp32" else None
    pipeline = Pipeline(bundle, cfg, admitted=gate)
    one = cycle_runner(pipeline, held_out_views(bundle, [7])[0])
    for _ in range(20):
        one()
    touch = pipeline.controller.run  # its own buffers' action: the cycle writes it again
    return {
        "runs_in_a_row_ms": runs_in_a_row(one),
        "second_run_after_gap_ms": {
            f"{g:g}": {"sleep": after(one, _then(one, lambda g=g: time.sleep(g / 1e3))),
                       "spin": after(one, _then(one, lambda g=g: _spin(g / 1e3)))}
            for g in GAPS_MS
        },
        "after_a_tiny_run_ms": {
            "cold": after(one, touch),
            "3 ms after a pre-warm": after(one, _then(one, lambda: time.sleep(0.003), touch)),
        },
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default="models/reference")
    ap.add_argument("--provider", default="openvino", choices=("cpu", "openvino"))
    ap.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sched", default="fifo", choices=("fifo", "normal"))
    ap.add_argument("--json")
    a = ap.parse_args()
    # Before the sessions, as the loop does: their worker threads inherit the policy.
    fifo = a.sched == "fifo"
    rt = realtime.apply(wake_latency_us=0, lock_memory=fifo,
                        fifo_priority=realtime.FIFO_PRIORITY if fifo else None)  # fmt: skip
    try:
        m = _measure(a)
    finally:
        rt.undo()
    cpu = cpu_info()
    print(f"{cpu.describe()}, {cpu.cores} cores; {a.provider} {a.precision}, "
          f"{a.threads} thread(s); {'; '.join(rt.applied + rt.notes)}")  # fmt: skip
    row = m["runs_in_a_row_ms"]
    print(f"after {IDLE_S * 1e3:g} ms idle, runs 1..{len(row)} in a row, p50 ms: "
          + " ".join(f"{x:.3f}" for x in row))
    for g, v in m["second_run_after_gap_ms"].items():
        print(f"run, gap {g} ms, run: second run p50 {v['sleep']:.3f} ms sleeping, "
              f"{v['spin']:.3f} spinning")
    for k, v in m["after_a_tiny_run_ms"].items():
        print(f"{k}, the controller alone, then the run: p50 {v:.3f} ms")
    if a.json:
        out = {"cpu": cpu.model, "isa": cpu.isa, "cores": cpu.cores, "provider": a.provider,
               "precision": a.precision, "threads": a.threads, "sched": a.sched, **m,
               "realtime": rt.summary()}  # fmt: skip
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)

if __name__ == "__main__":
    try:
        main()
    except GrasprtError as e:  # a bundle or a precision this CPU cannot run: one line
        sys.exit(f"model_warmth: {e}")
