"""The small types and interfaces every part of grasprt shares.

Drivers implement :class:`Camera` and :class:`Robot`; the loop only ever sees these,
so it cannot tell the simulator from hardware. Times are seconds on the loop's clock
(:class:`Clock`): ``time.monotonic`` on hardware, the simulator's clock in fast sims.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from grasprt.errors import ConfigError

if TYPE_CHECKING:
    from grasprt.profiles import GripperSpec


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: a bundle.json camera's keys, then ``dist``."""
        # Plain Python numbers: numpy scalars would stop json and yaml.safe_dump.
        return {
            "width": int(self.width),
            "height": int(self.height),
            "fx": float(self.fx),
            "fy": float(self.fy),
            "cx": float(self.cx),
            "cy": float(self.cy),
            "dist": [float(v) for v in self.dist],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "camera") -> Intrinsics:
        """The inverse of :meth:`to_dict`; ``dist`` may be left out (no distortion).

        ``image_width``/``image_height`` are read too: ROS camera_info's names, which
        ``grasprt calibrate-camera --json`` wrote before it wrote ``to_dict``'s.
        """
        size = [_positive_int(d, (key, f"image_{key}"), where) for key in ("width", "height")]
        for key in ("fx", "fy", "cx", "cy"):
            if key not in d:
                raise ConfigError(f"{where}: '{key}' is missing")
        k = [_finite(d[key], key, where) for key in ("fx", "fy", "cx", "cy")]
        raw = d.get("dist", [])
        if not isinstance(raw, list | tuple):
            raise ConfigError(f"{where}: 'dist' must be a list of numbers, got {raw!r}")
        dist = tuple(_finite(v, "dist", where) for v in raw)
        return cls(size[0], size[1], *k, dist)


def _positive_int(d: Mapping[str, Any], keys: tuple[str, ...], where: str) -> int:
    for key in keys:
        if key in d:
            v = d[key]
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{where}: '{key}' must be a positive integer, got {v!r}")
            return int(v)
    raise ConfigError(f"{where}: '{keys[0]}' is missing")


def _finite(v: Any, key: str, where: str) -> float:
    number = isinstance(v, int | float | np.number) and not isinstance(v, bool)
    if not number or not math.isfinite(float(v)):
        raise ConfigError(f"{where}: '{key}' must hold finite numbers, got {v!r}")
    return float(v)


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
    # Where the robot's own hand covers the view, on the mask's grid (100 x 100 bool),
    # when the camera knows it (MuJoCo's fingers): the perception gate tells a target
    # gone behind the hand from a lost one.
    hand_mask: np.ndarray | None = None


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


@dataclass(frozen=True)
class Observation:
    """What a policy sees in one cycle."""

    view: np.ndarray  # the model view: 400 x 400 x 3 uint8 RGB, in the bundle's camera
    q: np.ndarray  # measured joints, rad
    gripper: float  # measured gripper, 0 open ... 1 closed
    # The simulator's true mask in the bundle's camera (100 x 100), when it knows it.
    truth_mask: np.ndarray | None = None


@runtime_checkable
class Policy(Protocol):
    """What decides, once a cycle: an observation in, an action (a request the limiter
    judges) out. The ONNX bundle (fused or not), the scripted expert and DAgger's
    labelling policy all implement it; the loop cannot tell them apart.

    ``stages`` names what ``step`` runs, in order; ``step`` calls ``mark(stage)`` as each
    ends, so stage times say what really ran (one fused graph is one stage). ``mask``
    is the controller input the last step acted on (1 x 1 x 100 x 100 float32 in
    {0, 1}), kept for the record.
    """

    stages: tuple[str, ...]
    mask: np.ndarray

    def step(self, obs: Observation, mark: Callable[[str], None]) -> np.ndarray:
        """This cycle's action (8 floats: 7 joint deltas, gripper): a request the
        limiter judges, nominally in [-1, 1]."""
        ...


@dataclass
class Drivers:
    """What a robot kind gives a run: built, not yet connected (drivers/registry.py)."""

    clock: Clock
    camera: Camera
    robot: Robot
    heartbeat: Heartbeat | None = None
    # Puts the world (sim) or the operator (hardware) in place for episode n.
    setup_episode: Callable[[int], None] = lambda n: None
    # The table top the driver knows (base frame z, m): the sim's; None on hardware,
    # where `[limiter] floor_z` says where the table is.
    table_z: float | None = None
    # Steps per episode when the run does not say (the paper: 150 sim, 250 real).
    default_max_steps: int = 250
    # The simulated world, when there is one (privileged truth for evaluation).
    world: Any = None
    # The gripper this robot carries, where it is not the profile's: the limiter's floor
    # and the grasp detection then guard its fingertips (MuJoCo's robosuite fingers).
    gripper: GripperSpec | None = None
