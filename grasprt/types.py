"""The small types and interfaces every part of grasprt shares.

Drivers implement :class:`Camera` and :class:`Robot`; the loop only ever sees these,
so it cannot tell the simulator from hardware. Times are seconds on the loop's clock
(:class:`Clock`): ``time.monotonic`` on hardware, the simulator's clock in fast sims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera, optionally with OpenCV ``plumb_bob``/``rational_polynomial`` distortion."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist: tuple[float, ...] = ()

    def matrix(self) -> np.ndarray:
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def hfov_deg(self) -> float:
        return float(np.degrees(2.0 * np.arctan2(self.width / 2.0, self.fx)))


@dataclass(frozen=True)
class Frame:
    """One camera image. ``stamp`` is the capture time on the loop's clock."""

    image: np.ndarray  # H x W x 3, uint8, RGB
    stamp: float
    seq: int
    # Only simulated cameras know the truth; the loop uses it when asked to bypass the
    # segmenter (``--gt-mask``) and records it for evaluation.
    truth_mask: np.ndarray | None = None  # 100 x 100 float32 in {0, 1}
    # The device's own timestamp (seconds, its clock), kept for records and drift checks.
    device_stamp: float | None = None


@dataclass(frozen=True)
class RobotState:
    """What the arm reports. ``stamp`` is when it was measured, on the loop's clock."""

    q: np.ndarray  # 7 joint angles, rad, in the profile's joint order
    gripper: float  # 0.0 open ... 1.0 closed (measured position, not the command)
    stamp: float
    enabled: bool = True
    # Set by grippers that can tell (Intera is_gripping, Robotiq OBJ status, the sim).
    object_held: bool | None = None
    # A driver-side reason the robot cannot be commanded (e-stop pressed, error state).
    fault: str | None = None


@dataclass(frozen=True)
class JointCommand:
    """A position target that has passed the limiter. Nothing else reaches a robot."""

    q: np.ndarray  # 7 joint targets, rad
    gripper_closed: bool
    stamp: float


@runtime_checkable
class Clock(Protocol):
    """The loop's time source. The real one sleeps; the simulator's jumps."""

    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None: ...


@runtime_checkable
class Camera(Protocol):
    """A camera that keeps only its newest frame (captured in its own thread)."""

    name: str

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def latest(self) -> Frame | None:
        """The newest frame, without blocking; None before the first one."""
        ...

    @property
    def intrinsics(self) -> Intrinsics | None: ...


@runtime_checkable
class Robot(Protocol):
    """An arm with a gripper, commanded by joint position targets."""

    name: str
    joint_names: tuple[str, ...]

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def read_state(self) -> RobotState: ...

    def command(self, cmd: JointCommand) -> None: ...

    def hold(self) -> None:
        """Stop where the arm is now. Must be safe to call from any thread, at any time."""
        ...


@runtime_checkable
class Gripper(Protocol):
    """A gripper fitted to an arm that lacks its own (e.g. a Robotiq on serial)."""

    name: str

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def set_closed(self, closed: bool) -> None:
        """Request open or closed; returns at once."""
        ...

    def position(self) -> float:
        """Measured position, 0.0 open ... 1.0 closed."""
        ...

    def object_held(self) -> bool | None: ...


@runtime_checkable
class Heartbeat(Protocol):
    """An external watchdog (e.g. a microcontroller that trips the e-stop when beats stop)."""

    def connect(self) -> None: ...

    def beat(self) -> None:
        """Called once per healthy cycle; must not block the loop."""
        ...

    def disconnect(self) -> None: ...


@dataclass
class StageTimes:
    """Per-cycle stage durations in milliseconds, by stage name, in loop order."""

    ms: dict[str, float] = field(default_factory=dict)
