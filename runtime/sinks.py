"""Where the loop's records go: the flight recorder, the live view, or both.

The loop knows one recorder; :class:`Tee` hands each record to every sink in turn.
Every sink's ``put_*`` only queues and returns (the recorder's promise), so a tee of
them never blocks the loop either.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from grasprt.runtime.cycle_record import CycleRecord
from grasprt.types import Intrinsics


class RecordSink(Protocol):
    """What the flight recorder and the live view both take from a run."""

    def put_cycle(
        self, t: float, cycle: CycleRecord, mask: np.ndarray | None, frame: np.ndarray | None = None
    ) -> bool: ...

    def put_event(self, t: float, kind: str, **detail: Any) -> bool: ...

    def put_shadow(self, t: float, message: dict[str, Any]) -> bool: ...

    def set_camera(self, camera: Intrinsics, model: Intrinsics) -> None: ...


class Tee:
    """Every record to every sink; True when at least one took it."""

    def __init__(self, *sinks: RecordSink | None) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def put_cycle(
        self, t: float, cycle: CycleRecord, mask: np.ndarray | None, frame: np.ndarray | None = None
    ) -> bool:
        return any([s.put_cycle(t, cycle, mask, frame) for s in self.sinks])

    def put_event(self, t: float, kind: str, **detail: Any) -> bool:
        return any([s.put_event(t, kind, **detail) for s in self.sinks])

    def put_shadow(self, t: float, message: dict[str, Any]) -> bool:
        return any([s.put_shadow(t, message) for s in self.sinks])

    def set_camera(self, camera: Intrinsics, model: Intrinsics) -> None:
        for s in self.sinks:
            s.set_camera(camera, model)
