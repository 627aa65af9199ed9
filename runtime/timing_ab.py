"""Interleaved timing: several configurations measured round-robin, so a noisy
machine's drift hits them all alike."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

# After each run: ONNX Runtime's spinning workers go on for up to ~2**20 pause
# instructions (tens of ms on this class of CPU) before they sleep.
SETTLE_S = 0.03


def p50_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3 if samples else 0.0


def interleaved_p50(
    fns: dict[str, Callable[[], None]], reps: int, settle_s: float = SETTLE_S
) -> dict[str, float]:
    """p50 in ms of each callable, after 2 warm-up runs each, timed round-robin."""
    for fn in fns.values():
        for _ in range(2):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for i in range(reps):
        # Rotate the order each round: no configuration always runs first or last.
        k = i % len(names)
        for name in names[k:] + names[:k]:
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
            # Sessions with spinning workers keep a core busy after their run; back to
            # back, the next configuration would be timed against them (the tuning once
            # read 17 ms per cycle for models that take 7 alone). The loop's idle time
            # between cycles gives every engine a core at rest; so does this pause.
            time.sleep(settle_s)
    return {k: p50_ms(v) for k, v in times.items()}
