"""The host: the wall clock stepped, the CPU taken by busy neighbours."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from grasprt.evaluation.faults import Fault, register
from grasprt.evaluation.faults.trial import Trial

STEP_S = 3600.0


def _clock_step(trial: Trial) -> None:
    # A process-local step of time.time (evaluation/faults/inject.py says why), an hour
    # forwards, then two hours back: the schedule is on the monotonic clock.
    trial.send(f"clock_step {STEP_S:g}")
    time.sleep(0.7)
    trial.send(f"clock_step {-2 * STEP_S:g}")
    trial.notes["clock_steps_s"] = [STEP_S, -2 * STEP_S]


def _starve(trial: Trial) -> None:
    n = 2 * (os.cpu_count() or 1)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(n)
    ]
    trial.mark_injected()
    trial.notes["busy_processes"] = n

    def stop() -> None:
        for p in busy:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    trial.cleanup.append(stop)


register(
    Fault(
        "clock_step",
        "host",
        "the wall clock jumps 1 h forwards, then 2 h back: nothing may notice",
        "ride",
        exits=(143,),
        inject=_clock_step,
        observe_s=1.5,
    )
)
register(
    Fault(
        "cpu_starvation",
        "host",
        "2 busy processes per core beside the run: the loop keeps its rate (SCHED_FIFO) "
        "or an overrun streak holds the arm",
        "ride",
        exits=(143, 3),
        inject=_starve,
        may_fault=True,
        observe_s=3.0,
    )
)
