"""Real-time settings for the loop thread: CPU affinity, SCHED_FIFO, locked memory, and
the process's CPU wake-latency request.

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
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

# <sys/mman.h>
_MCL_CURRENT = 1
_MCL_FUTURE = 2
# Linux's PM QoS interface: a request holds while the file stays open (cyclictest's way).
CPU_LATENCY_PATH = "/dev/cpu_dma_latency"


@dataclass
class RealtimeState:
    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _old_affinity: set[int] | None = None
    _old_policy: tuple[int, int] | None = None
    _locked: bool = False
    _latency_fd: int | None = None
    _old_opencv_threads: int | None = None

    def undo(self) -> None:
        if self._old_opencv_threads is not None:
            import cv2

            cv2.setNumThreads(self._old_opencv_threads)
            self._old_opencv_threads = None
        if self._latency_fd is not None:
            os.close(self._latency_fd)  # closing the file withdraws the request
            self._latency_fd = None
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
    *,
    cpus: set[int] | None = None,
    fifo_priority: int | None = None,
    lock_memory: bool = False,
    wake_latency_us: int | None = None,
    latency_path: str = CPU_LATENCY_PATH,
    opencv_threads: int | None = None,
) -> RealtimeState:
    """Apply to the calling thread (Linux: pid 0 is the thread); the wake-latency
    request holds for the whole machine until `undo()`, and OpenCV's thread count for
    the whole process. Never raises."""
    st = RealtimeState()
    if opencv_threads is not None:
        _set_opencv_threads(st, opencv_threads)
    if wake_latency_us is not None:
        _request_wake_latency(st, wake_latency_us, latency_path)
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


def _set_opencv_threads(st: RealtimeState, n: int) -> None:
    try:
        import cv2
    except ModuleNotFoundError:
        return
    old = cv2.getNumThreads()
    if old == n:
        return
    cv2.setNumThreads(n)
    st._old_opencv_threads = old
    st.applied.append(f"OpenCV threads {old} -> {n}")


def _request_wake_latency(st: RealtimeState, us: int, path: str) -> None:
    """Ask the kernel to keep idle cores within `us` of waking up.

    A core with nothing to run goes idle; the deeper its idle state, the later it wakes
    when the loop's timer fires. In a virtual machine an idle vCPU is halted on the host,
    and waking it costs milliseconds: measured on a 2-core AMD EPYC Firecracker guest, a
    95 ms sleep woke p99 1.3 / max 3.3 ms late, and 0.42 / 0.69 ms with this request at
    0 us (the haltpoll driver then polls instead of halting). On a bare-metal robot PC the
    same request keeps the cores out of deep C-states. The cost is an idle core that
    polls (power, heat), for as long as the loop runs."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        st.notes.append(
            f"CPU wake latency: {path} refused ({e.strerror}); idle cores may wake late "
            "(run as root or give the robot user write access to it)"
        )
        return
    try:
        os.write(fd, struct.pack("i", us))
    except OSError as e:
        os.close(fd)
        st.notes.append(f"CPU wake latency: writing {path} failed ({e.strerror})")
        return
    st._latency_fd = fd
    st.applied.append(f"CPU wake latency {us} us ({path})")


@contextlib.contextmanager
def normal_priority() -> Iterator[None]:
    """The calling thread at SCHED_OTHER for a while (work that never sleeps, such as
    simulated attempts on the simulator's clock, must not hold a core at SCHED_FIFO),
    then back to what it was."""
    if not hasattr(os, "sched_getscheduler"):
        yield
        return
    policy, prio = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
    lowered = False
    if policy != os.SCHED_OTHER:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            lowered = True
    try:
        yield
    finally:
        if lowered:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, policy, os.sched_param(prio))


FIFO_PRIORITY = 50  # the process and ONNX Runtime's workers (ros2_control's choice)
HELPER_PRIORITY = 40  # camera and recorder threads: below the model's workers
LOOP_PRIORITY = 60  # the loop thread itself, above the threads it depends on
WAKE_LATENCY_US = 0  # idle cores poll rather than sleep while the loop runs (cyclictest's)
# OpenCV's own worker pool, off while the loop runs. The cycle's one parallel OpenCV call,
# the perception gate's connected components on a 100x100 mask, takes 20 us on one
# thread against 38 on two (warm); in the loop, on a 2-core AMD EPYC at 10 Hz, the gate
# fell from 0.29 to 0.21 ms p50 and the models from 1.97-2.26 to 1.55-1.75 ms, a pool
# the inference threads no longer share the cores with.
OPENCV_THREADS = 1


def loop_cpu(threads: int) -> set[int] | None:
    """The core for the loop thread, when pinning helps: with one inference thread the
    model runs in the loop's thread, which then owns the last core. With more threads,
    ONNX Runtime's workers need the other cores; the loop is left unpinned."""
    if threads != 1 or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return {allowed[-1]} if len(allowed) > 1 else None


def placement_cpus(placement: str, threads: int) -> tuple[set[int] | None, set[int] | None]:
    """(the loop thread's cores, the camera and recorder threads' cores) for an
    ``[inference] placement``; None leaves a thread where the OS puts it.

    "auto": the loop on the last core when inference runs in one thread (see
    :func:`loop_cpu`); "shared": nothing pinned; "split": the loop thread on the last
    core and the helper threads on the first, whatever the thread count (the model's
    worker threads stay free). Apart, because the loop's clock spins its last
    millisecond at a higher priority than a helper's: on one core, a frame due in that
    millisecond would wait for the spin to end, and the cycle would take the previous
    one. `grasprt bench --tune` measures which one this machine wants."""
    if placement == "shared" or not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if placement == "split" and len(allowed) > 1:
        return {allowed[-1]}, {allowed[0]}
    return loop_cpu(threads), None


class LoopPriorities:
    """The threads of a run, ranked, in three steps the runner calls in order:

    1. ``before_sessions()``: SCHED_FIFO ``FIFO_PRIORITY``, locked memory and the CPU
       wake-latency request for the process, before the ONNX Runtime sessions exist, so
       their worker threads inherit the policy;
    2. ``before_threads()``: the calling thread down to ``HELPER_PRIORITY`` just before
       the drivers and recorder start their threads (they inherit it): a frame being
       rendered or a record being written never stalls a model run;
    3. ``in_loop()``, from the loop's first cycle: the loop thread up to
       ``LOOP_PRIORITY`` (and pinned, see :func:`loop_cpu`), above everything it waits
       for. Later calls do nothing.

    ``after_run()`` undoes 2 and 3 (a bench runs the loop again); ``close()`` all.
    Every refusal is a note; nothing raises.
    """

    def __init__(
        self, enabled: bool, cpus: set[int] | None = None, helper_cpus: set[int] | None = None
    ) -> None:
        self.enabled = enabled
        self.cpus = cpus
        # The camera and recorder threads' cores ("split" placement): the calling thread
        # is pinned there while they start (they inherit it), and unpinned in in_loop().
        self.helper_cpus = helper_cpus
        self._helper_pin: RealtimeState | None = None
        self.process = RealtimeState()
        self._run: list[RealtimeState] = []
        self._raised = False
        self.loop_applied: list[str] = []
        self.notes: list[str] = []

    @property
    def fifo(self) -> bool:
        return any(a.startswith("SCHED_FIFO") for a in self.process.applied)

    def before_sessions(self) -> None:
        if self.enabled:
            self.process = apply(
                fifo_priority=FIFO_PRIORITY,
                lock_memory=True,
                wake_latency_us=WAKE_LATENCY_US,
                opencv_threads=OPENCV_THREADS,
            )
            self.notes += self.process.notes

    def before_threads(self) -> None:
        self._raised = False
        if self.fifo:
            self._run.append(apply(fifo_priority=HELPER_PRIORITY))
        if self.enabled and self.helper_cpus:
            self._helper_pin = apply(cpus=self.helper_cpus)
            self.notes += self._helper_pin.notes

    def _unpin_helpers(self) -> None:
        if self._helper_pin is not None:
            self._helper_pin.undo()
            self._helper_pin = None

    def in_loop(self) -> None:
        if self._raised:
            return
        self._raised = True
        # The helpers run now, pinned; the loop thread itself goes back to every core.
        self._unpin_helpers()
        if not self.enabled or (not self.fifo and self.cpus is None):
            return
        st = apply(cpus=self.cpus, fifo_priority=LOOP_PRIORITY if self.fifo else None)
        self._run.append(st)
        if not self.loop_applied:
            self.loop_applied = list(st.applied)
            self.notes += st.notes

    def after_run(self) -> None:
        self._unpin_helpers()
        for st in reversed(self._run):
            st.undo()
        self._run = []

    def close(self) -> None:
        self.after_run()
        self.process.undo()

    def summary(self) -> dict[str, list[str]]:
        applied = list(self.process.applied)
        if self.fifo:
            applied.append(f"SCHED_FIFO priority {HELPER_PRIORITY} (camera and recorder threads)")
        if self.helper_cpus:
            applied.append(f"CPU affinity {sorted(self.helper_cpus)} (camera and recorder threads)")
        applied += [f"{a} (loop thread)" for a in self.loop_applied]
        return {"applied": applied, "notes": list(self.notes)}
