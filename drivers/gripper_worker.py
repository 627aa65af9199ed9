"""Gripper open/close off the loop's thread.

Intera's ``Gripper.open()``/``close()`` block for 100 ms or more (the SDK re-sends the
IO command every 0.1 s until the gripper acknowledges it), longer than a 10 Hz cycle
leaves: called in ``command()`` they overran the loop at every gripper change. This
worker takes the newest request and carries it out in its own thread, so ``command()``
returns at once; a request that was overtaken by a newer one is dropped, not queued
(the newest wish is the only one that matters), and an SDK error is kept for the
driver to report as a fault.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class GripperWorker:
    def __init__(self, gripper: Any, name: str = "gripper") -> None:
        self._gripper = gripper
        self._cond = threading.Condition()
        self._wanted: bool | None = None  # closed?; None: nothing asked yet
        self._done: bool | None = None  # what was last carried out
        self._stop = False
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"{name}-worker", daemon=True)
        self._thread.start()

    def request(self, closed: bool) -> None:
        """Ask for open or closed; returns at once."""
        with self._cond:
            self._wanted = closed
            self._cond.notify()

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._wanted is not None and self._wanted != self._done

    def stop(self, timeout_s: float = 2.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout_s)

    def _next(self) -> bool | None:
        with self._cond:
            while not self._stop and (self._wanted is None or self._wanted == self._done):
                self._cond.wait()
            return None if self._stop else self._wanted

    def _run(self) -> None:
        while (closed := self._next()) is not None:
            try:
                self._gripper.close() if closed else self._gripper.open()
            except Exception as err:
                self.error = f"{type(err).__name__}: {err}"
                log.exception("gripper command failed")
            with self._cond:
                self._done = closed
