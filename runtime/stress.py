"""Busy neighbours for `grasprt bench --stress N`: what contention does to the loop.

Each is a separate Python process spinning on integer arithmetic, at normal priority
and free to run on any CPU, whatever the bench's own thread was given. They are
always killed and reaped on the way out, exceptions included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_BUSY = (
    "import os\n"
    "os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))\n"
    # Anywhere on the machine, whatever affinity the bench's own thread has.
    "os.sched_setaffinity(0, range(os.cpu_count() or 1))\n"
    "x = 0\n"
    "while True:\n"
    "    x = (x * 1103515245 + 12345) & 0xFFFFFFFF\n"
)


@contextmanager
def stress(n: int) -> Iterator[list[int]]:
    """``n`` busy processes at normal priority for the duration; always reaped."""
    pids: list[int] = []
    try:
        for _ in range(n):
            pid = os.posix_spawn(sys.executable, [sys.executable, "-c", _BUSY], os.environ)
            pids.append(pid)
            # Not the bench's SCHED_FIFO, which a child inherits: an ordinary neighbour.
            # (Lowering a policy is always permitted; the child does it too, at once.)
            with contextlib.suppress(OSError):
                os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        yield pids
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
