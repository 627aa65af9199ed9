"""Faults a user can rehearse and a test can inject: what they are, and when they fire.

A fault comes from the ``/grasprt_twin/fault`` topic (std_msgs/String, the kind) or from
``--fault KIND@SECONDS`` (that long after the twin is ready). "The twin dies" needs no
support here: a test kills the process, as a robot PC losing power would.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from grasprt.errors import ConfigError

FAULT_KINDS: dict[str, str] = {
    "estop": "the e-stop button is pressed: stopped, disabled, the arm holds",
    "error": "a joint fault: error and stopped, disabled, the arm holds (a reset clears it)",
    "stop_joint_states": "/robot/joint_states goes silent (the rest keeps publishing)",
    "freeze_camera": "the hand camera stops publishing frames",
    "clear": "releases the e-stop button (a reset is still needed) and ends the other faults",
}


@dataclass(frozen=True)
class ScheduledFault:
    kind: str
    at_s: float  # seconds after the twin is ready


def check_kind(kind: str) -> str:
    kind = kind.strip().lower()
    if kind not in FAULT_KINDS:
        raise ConfigError(f"unknown twin fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
    return kind


def parse_fault(spec: str) -> ScheduledFault:
    """``"estop@5"`` -> ScheduledFault("estop", 5.0)."""
    kind, sep, at = spec.partition("@")
    if not sep:
        raise ConfigError(f"--fault {spec!r}: expected KIND@SECONDS, e.g. estop@5")
    try:
        at_s = float(at)
    except ValueError:
        raise ConfigError(f"--fault {spec!r}: {at!r} is not a number of seconds") from None
    if not math.isfinite(at_s) or at_s < 0:
        raise ConfigError(f"--fault {spec!r}: seconds must be finite and >= 0")
    return ScheduledFault(check_kind(kind), at_s)


@dataclass
class FaultFlags:
    """The faults that are not robot state: read by the publishers on every tick."""

    joint_states_stopped: bool = False
    camera_frozen: bool = False

    def clear(self) -> None:
        self.joint_states_stopped = False
        self.camera_frozen = False


class FaultSchedule:
    """Fires each scheduled fault once, on its own thread, relative to `start()`."""

    def __init__(
        self, faults: Iterable[ScheduledFault], apply: Callable[[str], None], stop: threading.Event
    ) -> None:
        self.faults = sorted(faults, key=lambda f: f.at_s)
        self._apply = apply
        self._stop = stop
        self._thread: threading.Thread | None = None

    def start(self, now: Callable[[], float]) -> None:
        if not self.faults:
            return
        t0 = now()

        def run() -> None:
            for fault in self.faults:
                # Event.wait: a stopping twin ends the wait at once.
                if self._stop.wait(max(0.0, t0 + fault.at_s - now())):
                    return
                self._apply(fault.kind)

        self._thread = threading.Thread(target=run, name="twin-faults", daemon=True)
        self._thread.start()
