"""A camera that costs the loop's cores nothing: frames made before timing, held in
memory, handed out by a thread at the camera's rate (``grasprt bench``).

On a robot the camera is a device: its frames arrive from USB while the loop's cores
run the models. The simulator instead renders each frame on those same cores, so a
bench fed by it measures the renderer as well. :func:`prerender` renders the frames
once, before anything is timed (its cost is reported on its own line);
:class:`PrerenderedCamera` then delivers them in turn, each stamped with the clock's
time at delivery (the photon time of a real camera), from a thread that does nothing
but swap a reference at ``fps``. A frame whose time has come is the newest even if
that thread has not had a core yet (``latest()`` takes it, stamped with its time): a
device's frames land by DMA, only their pickup needs the CPU. On the simulator's
clock there is no thread: the frame for the present moment is handed out on demand,
as the sim camera does.

``sync=True`` (the bench's default) phase-locks delivery to the loop: each frame lands
``SYNC_LEAD_S`` before the time the loop last asked, modulo the frame period, as a
camera synchronised to the control loop (a hardware trigger, or genlock) delivers;
with a loop period that is a whole number of frame periods (10 Hz and 30 fps), the
frame a cycle takes is then ``SYNC_LEAD_S`` old. Free-running (``sync=False``), a frame
is up to one frame period old when the loop takes it, and photon-to-command says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from grasprt.bundle import Bundle
from grasprt.clock import SimClock
from grasprt.config import RunConfig
from grasprt.types import Clock, Drivers, Frame, Intrinsics

SYNC_LEAD_S = 0.0005


@dataclass(frozen=True)
class Prerendered:
    frames: list[Frame]
    render_ms: list[float]  # the simulator's cost of each frame, rendered apart

    def summary(self) -> dict[str, float]:
        ms = np.asarray(self.render_ms) if self.render_ms else np.zeros(1)
        return {
            "frames": len(self.frames),
            "p50": float(np.median(ms)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
            "mean": float(ms.mean()),
        }


def prerender(capture: Callable[[], Frame], setups: Sequence[Callable[[], None]]) -> Prerendered:
    """One frame per ``setups`` entry (each puts the world in place), timed."""
    frames, ms = [], []
    for setup in setups:
        setup()
        t = time.perf_counter()
        frames.append(capture())
        ms.append((time.perf_counter() - t) * 1e3)
    return Prerendered(frames, ms)


class PrerenderedCamera:
    name = "prerendered"

    def __init__(
        self,
        frames: Sequence[Frame],
        intrinsics: Intrinsics,
        clock: Clock,
        fps: float = 30.0,
        sync: bool = False,
    ) -> None:
        if not frames:
            raise ValueError("a prerendered camera needs at least one frame")
        self._frames = list(frames)
        self._intrinsics = intrinsics
        self.clock = clock
        self.fps = fps
        self.threaded = not isinstance(clock, SimClock)
        self.sync = sync
        self._asked: float | None = None  # when the loop last asked (sync)
        self._due: float | None = None  # when the next frame lands (threaded)
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._next = 0
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self.delivered = 0

    @property
    def intrinsics(self) -> Intrinsics:
        return self._intrinsics

    def connect(self) -> None:
        self.disconnect()
        self._latest = None
        self._connected = True
        if self.threaded:
            self._stop.clear()
            with self._lock:
                self._deliver(self.clock.now())  # streaming from the start
                self._due = self.clock.now() + 1.0 / self.fps
            self._thread = threading.Thread(
                target=self._run, name="prerendered-camera", daemon=True
            )
            self._thread.start()

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._connected = False

    def latest(self) -> Frame | None:
        if not self._connected:
            return None
        now = self.clock.now()
        with self._lock:
            if self.sync:
                self._asked = now
            if not self.threaded:
                if self._latest is None or self._latest.stamp != now:
                    self._deliver(now)
            elif self._due is not None and now >= self._due:
                # Its time has come: a device's frame lands (DMA) whether or not the
                # thread that picks it up has had a core yet. Stamped with its time.
                self._deliver(self._due)
                self._advance(now)
            return self._latest

    def _deliver(self, stamp: float) -> None:
        """The next frame, stamped ``stamp`` (under the lock)."""
        frame = self._frames[self._next % len(self._frames)]
        self._next += 1
        self._seq += 1
        self._latest = replace(frame, stamp=stamp, seq=self._seq, device_stamp=stamp)
        self.delivered += 1

    def _advance(self, now: float) -> None:
        # Never bursts: frames whose time passed unseen are skipped.
        assert self._due is not None
        self._due = self._next_due(max(self._due, now) + 1e-4, 1.0 / self.fps)

    def _next_due(self, after: float, period: float) -> float:
        """The next delivery time after ``after``: on the frame clock, or (sync) on
        the grid ``SYNC_LEAD_S`` before the loop's last request."""
        asked = self._asked
        if asked is None:
            return after + period
        anchor = asked - SYNC_LEAD_S
        k = int((after - anchor) // period) + 1
        return anchor + k * period

    def _run(self) -> None:
        while True:
            with self._lock:
                due = self._due
            assert due is not None
            if self._stop.wait(max(0.0, due - self.clock.now())):
                return
            with self._lock:
                now = self.clock.now()
                if self._due is not None and now >= self._due:
                    self._deliver(self._due)
                    self._advance(now)


# Frames the bench prerenders: one per world seed (each its own scene), a second of
# the sim camera's 30 fps, which the camera then cycles through.
PRERENDER_FRAMES = 30
PRERENDER_SEEDS = range(3000, 3000 + PRERENDER_FRAMES)


class PrerenderedFeed:
    """A drivers factory (Run's ``make_drivers``) that builds what ``build`` builds and,
    for the simulated camera with ``[bench] feed = "prerendered"``, puts a
    :class:`PrerenderedCamera` in its place. The frames are rendered once, on the first
    build, before any loop is timed; :meth:`render_summary` is what they cost."""

    def __init__(self, build: Callable[..., Drivers]) -> None:
        self.build = build
        self.made: Prerendered | None = None

    def __call__(self, cfg: RunConfig, bundle: Bundle) -> Drivers:
        d = self.build(cfg, bundle)
        sim = d.camera
        if cfg.bench.feed != "prerendered" or cfg.camera not in (None, "sim") or d.world is None:
            return d
        if self.made is None:
            world = d.world
            self.made = prerender(
                sim.capture, [lambda s=s: world.reset(s) for s in PRERENDER_SEEDS]
            )
        cam = PrerenderedCamera(
            self.made.frames, sim.intrinsics, d.clock, fps=sim.fps, sync=cfg.bench.feed_sync
        )
        return replace(d, camera=cam)

    def render_summary(self) -> dict[str, float] | None:
        return None if self.made is None else self.made.summary()
