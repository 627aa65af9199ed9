"""The robot assembly's state (intera_core_msgs/RobotAssemblyState) and how it changes.

This is what ``RobotEnable`` sees and drives: enable only when nothing stops the robot,
the e-stop and a joint fault stop and disable it, a reset clears a stop unless the
button is still pressed. Pure logic (no ROS), so the rules can be tested on their own;
`halt` is called whenever the arm must stop following commands (the twin holds it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

# RobotAssemblyState constants (intera_core_msgs/msg/RobotAssemblyState.msg).
ESTOP_BUTTON_UNPRESSED = 0
ESTOP_BUTTON_PRESSED = 1
ESTOP_BUTTON_UNKNOWN = 2  # the stop came from something other than the button
ESTOP_BUTTON_RELEASED = 3  # pressed, now released, the robot still stopped until reset
ESTOP_SOURCE_NONE = 0
ESTOP_SOURCE_USER = 1
ESTOP_SOURCE_FAULT = 3
ESTOP_SOURCE_ENGINE = 4


@dataclass(frozen=True)
class AssemblySnapshot:
    enabled: bool
    stopped: bool
    error: bool
    estop_button: int
    estop_source: int

    @property
    def ready(self) -> bool:
        return self.enabled and not self.stopped and not self.error


class Assembly:
    """Enable / stop / reset / e-stop / error, thread-safe (ROS callbacks call in)."""

    def __init__(self, halt: Callable[[], None]) -> None:
        self._halt = halt
        self._lock = threading.Lock()
        self._s = AssemblySnapshot(False, False, False, ESTOP_BUTTON_UNPRESSED, ESTOP_SOURCE_NONE)

    def snapshot(self) -> AssemblySnapshot:
        with self._lock:
            return self._s

    def can_move(self) -> bool:
        return self.snapshot().ready

    def _set(self, **changes: object) -> None:
        """Replace fields; halt the arm when it was allowed to move and no longer is."""
        with self._lock:
            before = self._s
            self._s = replace(before, **changes)
            halted = before.ready and not self._s.ready
        if halted:
            self._halt()

    def request_enable(self, on: bool) -> str | None:
        """``/robot/set_super_enable``: the reason it was refused, or None."""
        s = self.snapshot()
        if on and s.stopped:
            return "robot is stopped: reset it first"
        if on and s.error:
            return "robot is in error: reset it first"
        self._set(enabled=bool(on))
        return None

    def reset(self) -> str | None:
        """``/robot/set_super_reset``: clears a stop or an error unless the button is down.

        The robot comes out of a reset disabled, as Intera's does (RobotEnable.enable()
        enables after its reset)."""
        if self.snapshot().estop_button == ESTOP_BUTTON_PRESSED:
            return "e-stop button is pressed: release it first"
        self._set(
            enabled=False,
            stopped=False,
            error=False,
            estop_button=ESTOP_BUTTON_UNPRESSED,
            estop_source=ESTOP_SOURCE_NONE,
        )
        return None

    def stop(self) -> None:
        """``/robot/set_super_stop``: a software e-stop (RobotEnable.stop())."""
        s = self.snapshot()
        button = s.estop_button if s.stopped else ESTOP_BUTTON_UNKNOWN
        source = s.estop_source if s.stopped else ESTOP_SOURCE_ENGINE
        self._set(enabled=False, stopped=True, estop_button=button, estop_source=source)

    def press_estop(self) -> None:
        self._set(
            enabled=False,
            stopped=True,
            estop_button=ESTOP_BUTTON_PRESSED,
            estop_source=ESTOP_SOURCE_USER,
        )

    def release_estop(self) -> None:
        if self.snapshot().estop_button == ESTOP_BUTTON_PRESSED:
            self._set(estop_button=ESTOP_BUTTON_RELEASED)

    def raise_error(self) -> None:
        """A joint fault: the motor controller stops the robot (estop_source FAULT).

        Stopped as well as error, so RobotEnable.enable()'s reset can clear it: the SDK
        only resets a robot that reports stopped."""
        s = self.snapshot()
        button = s.estop_button if s.stopped else ESTOP_BUTTON_UNKNOWN
        self._set(
            enabled=False,
            stopped=True,
            error=True,
            estop_button=button,
            estop_source=ESTOP_SOURCE_FAULT,
        )
