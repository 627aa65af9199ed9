"""The simulated arm moving on its own, as a real one does, on a real-time clock.

The world integrates lazily: every read first advances it to the present. Fed by a
camera that renders nothing in the loop (drivers/prerendered.py), nothing else advances
it between cycles, so each ``read_state`` integrated a whole period (20 substeps at
10 Hz, about 0.5-0.7 ms of Python) inside the loop's timed cycle: the simulator's cost,
which a real arm's state read (the newest message from its driver) never pays.

:class:`BackgroundIntegrator` advances the world to the present once a substep from a
thread of its own, so a read finds at most the last substep left to do. The world's
state is the same as with lazy integration alone: it always lands on the same grid of
substeps, commands are queued at the clock time they are sent, and the random draws
(sensor noise at reads, bumps during steps) happen in the same order. On the
simulator's clock there is no thread: time moves only when the loop waits, and the
read integrates, as before.
"""

from __future__ import annotations

import threading

from grasprt.drivers.sim.world import SimWorld


class BackgroundIntegrator:
    def __init__(self, world: SimWorld, interval_s: float | None = None) -> None:
        self.world = world
        self.interval_s = world.dt if interval_s is None else interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-integrator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.world.sync()
