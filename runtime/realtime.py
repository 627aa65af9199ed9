"""Real-time settings for the loop thread: CPU affinity, SCHED_FIFO, locked memory.

Each is tried on its own and degrades to a one-line note when the OS refuses (no
CAP_SYS_NICE, an RLIMIT_MEMLOCK too small, not Linux): the loop still runs, just with
less protection from the rest of the machine. ``undo()`` puts back what was changed,
so a bench can compare with and without in one process.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field

# <sys/mman.h>
_MCL_CURRENT = 1
_MCL_FUTURE = 2


@dataclass
class RealtimeState:
    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _old_affinity: set[int] | None = None
    _old_policy: tuple[int, int] | None = None
    _locked: bool = False

    def undo(self) -> None:
        if self._old_affinity is not None:
            os.sched_setaffinity(0, self._old_affinity)
            self._old_affinity = None
        if self._old_policy is not None:
            policy, prio = self._old_policy
            # Dropping priority back is always allowed; if even that fails, nothing to do.
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, policy, os.sched_param(prio))
            self._old_policy = None
        if self._locked:
            libc = _libc()
            if libc is not None:
                libc.munlockall()
            self._locked = False

    def summary(self) -> dict[str, list[str]]:
        return {"applied": list(self.applied), "notes": list(self.notes)}


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def apply(
    *, cpus: set[int] | None = None, fifo_priority: int | None = None, lock_memory: bool = False
) -> RealtimeState:
    """Apply to the calling thread (Linux: pid 0 is the thread). Never raises."""
    st = RealtimeState()
    if cpus:
        if not hasattr(os, "sched_setaffinity"):
            st.notes.append("CPU affinity: not supported on this OS")
        else:
            try:
                old = os.sched_getaffinity(0)
                os.sched_setaffinity(0, cpus)
                st._old_affinity = old
                st.applied.append(f"CPU affinity {sorted(cpus)}")
            except OSError as e:
                st.notes.append(f"CPU affinity {sorted(cpus)}: refused ({e.strerror})")
    if fifo_priority is not None:
        if not hasattr(os, "SCHED_FIFO"):
            st.notes.append("SCHED_FIFO: not supported on this OS")
        else:
            try:
                old_policy = os.sched_getscheduler(0)
                old_prio = os.sched_getparam(0).sched_priority
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo_priority))
                st._old_policy = (old_policy, old_prio)
                st.applied.append(f"SCHED_FIFO priority {fifo_priority}")
            except (OSError, ValueError) as e:
                why = e.strerror if isinstance(e, OSError) else str(e)
                st.notes.append(
                    f"SCHED_FIFO: not permitted ({why}); running at normal priority "
                    "(needs root or CAP_SYS_NICE / an rtprio limit)"
                )
    if lock_memory:
        libc = _libc()
        if libc is None:
            st.notes.append("mlockall: no C library found")
        elif libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
            err = ctypes.get_errno()
            st.notes.append(
                f"mlockall: refused ({os.strerror(err)}); pages may be swapped "
                "(raise RLIMIT_MEMLOCK or run with CAP_IPC_LOCK)"
            )
        else:
            st._locked = True
            st.applied.append("mlockall(MCL_CURRENT | MCL_FUTURE)")
    return st
