"""The simulated wrist camera behind grasprt's Camera interface.

Two ways to produce frames, chosen by the world's clock unless told:

* real time (a monotonic clock): a capture thread renders at `fps` and keeps only the
  newest frame, as a real camera driver does; `latest()` never blocks.
* simulated time (:class:`SimClock`): `latest()` renders the present moment on demand,
  in the caller's thread, so a run is deterministic; asking twice at the same time
  returns the same frame.

Fault injection: with `freeze_after_s`, no new frame is made that long after
`connect()`; `latest()` keeps returning the last one, whose stamp then ages, as with a
stalled USB camera.
"""

from __future__ import annotations

import threading

import numpy as np

from grasprt.clock import SimClock
from grasprt.drivers.sim.mask import hand_mask, truth_mask
from grasprt.drivers.sim.optics import View
from grasprt.drivers.sim.render import Renderer
from grasprt.drivers.sim.world import SimWorld
from grasprt.types import Frame, Intrinsics


class SimWristCamera:
    name = "sim"

    def __init__(
        self,
        world: SimWorld,
        intrinsics: Intrinsics,
        model_intrinsics: Intrinsics,
        fps: float = 30.0,
        noise_std: float = 2.0,
        freeze_after_s: float | None = None,
        threaded: bool | None = None,
    ) -> None:
        self.world = world
        self.clock = world.clock
        self.fps = fps
        self.freeze_after_s = freeze_after_s
        self.threaded = not isinstance(world.clock, SimClock) if threaded is None else threaded
        self.renderer = Renderer(intrinsics, noise_std)
        self.model_intrinsics = model_intrinsics
        self.error: BaseException | None = None  # what stopped the capture thread, if anything
        self._intrinsics = intrinsics
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._seq = 0
        self._episode = -1
        self._rng = np.random.default_rng(0)
        self._connected_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def intrinsics(self) -> Intrinsics:
        return self._intrinsics

    def connect(self) -> None:
        self.disconnect()
        with self._lock:
            self._latest = None
            self.error = None
        self._connected_at = self.clock.now()
        if self.threaded:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sim-camera", daemon=True)
            self._thread.start()

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._connected_at = None

    def latest(self) -> Frame | None:
        if self._connected_at is None:
            return None
        if self.threaded:
            with self._lock:
                return self._latest
        with self._lock:
            if self._frozen() or self._is_current(self._latest):
                return self._latest
            self._latest = self.capture()
            return self._latest

    def _frozen(self) -> bool:
        since, limit = self._connected_at, self.freeze_after_s
        return limit is not None and since is not None and self.clock.now() - since >= limit

    def _is_current(self, frame: Frame | None) -> bool:
        if frame is None or self._episode != self.world.episode:
            return False
        self.world.sync()
        return frame.stamp == self.world.time

    def capture(self) -> Frame:
        """Render the world as it is now (whatever the mode); no fault injection."""
        snap = self.world.snapshot()
        if snap.episode != self._episode:
            # A new episode restarts the noise stream: same seed, same frames.
            self._episode = snap.episode
            self._rng = np.random.default_rng(snap.look.noise_seed)
        image = self.renderer.render(snap, self._rng)
        model_view = View.of(self.model_intrinsics, snap.camera_pose)
        mask = truth_mask(model_view, snap.target.centre, snap.target.radius, snap.hand_parts)
        hand = hand_mask(model_view, snap.hand_parts) if snap.hand_parts else None
        self._seq += 1
        return Frame(
            image=image, stamp=snap.t, seq=self._seq, truth_mask=mask, device_stamp=snap.t,
            hand_mask=hand,
        )  # fmt: skip

    def _run(self) -> None:
        period = 1.0 / self.fps
        due = self.clock.now()
        while not self._stop.is_set():
            if not self._frozen():
                try:
                    frame = self.capture()
                except Exception as e:  # the watchdog sees a stalled camera; keep the cause
                    self.error = e
                    return
                with self._lock:
                    self._latest = frame
            due += period
            now = self.clock.now()
            if due < now:  # fell behind: skip the missed frames rather than bursting
                due = now
            self._stop.wait(due - now)
