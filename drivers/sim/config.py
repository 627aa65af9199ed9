"""Settings of the simulated Sawyer, its scene and its wrist camera, with realistic defaults.

Lengths are metres in ``right_arm_base_link`` (z up), angles radians, times seconds.
The three dynamics-gap presets (:func:`gap_preset`) let a controller trained on one
setting be evaluated on a harsher one, which is how the paper argues the closed loop
absorbs the gap between the simulated and the real arm.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from grasprt.config import check_number
from grasprt.errors import ConfigError


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ConfigError(f"sim config: {what}")


@dataclass(frozen=True)
class GapConfig:
    """How the simulated arm differs from an ideal kinematic one (the dynamics gap)."""

    # Time from `command()` until the joint controllers act on it (ROS + Intera hop).
    latency_s: float = 0.03
    # First-order lag of each joint toward its target; 0 = follows at once (within the cap).
    lag_tau_s: float = 0.08
    # Std of the white noise on each reported joint angle.
    noise_std: float = 0.001
    # Std of the per-episode, per-joint encoder offset (reported minus true).
    bias_std: float = 0.003
    # Fraction of the profile's joint velocity limits the arm may use; Intera's
    # `set_joint_position_speed` default is 0.3.
    speed_ratio: float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            check_number("sim gap", f.name, v, low=0)
        check_number("sim gap", "speed_ratio", self.speed_ratio, low=0, high=1, low_open=True)


GAP_PRESETS: dict[str, GapConfig] = {
    # An ideal arm: commands act at once, no lag, exact encoders, full speed.
    "none": GapConfig(latency_s=0.0, lag_tau_s=0.0, noise_std=0.0, bias_std=0.0, speed_ratio=1.0),
    "default": GapConfig(),
    # A slow, badly calibrated arm on a loaded network: a stress test, not a real figure.
    "large": GapConfig(
        latency_s=0.08, lag_tau_s=0.2, noise_std=0.003, bias_std=0.01, speed_ratio=0.2
    ),
}


def gap_preset(name: str) -> GapConfig:
    try:
        return GAP_PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dynamics gap preset {name!r}; known: {', '.join(GAP_PRESETS)}"
        ) from None


@dataclass(frozen=True)
class SceneConfig:
    """The table, the target sphere, clutter, and where an episode starts."""

    # Top of the table. 6 cm below the arm's base link puts a sphere lying on it well
    # inside the Sawyer's reach with the hand pointing straight down (fingertips need
    # z = -0.053 m, the neutral pose has them at +0.08 m).
    table_z: float = -0.06
    sphere_diameter: float = 0.0137  # the paper's yellow sphere
    sphere_rgb: tuple[float, float, float] = (0.93, 0.80, 0.08)
    # Where the sphere is placed (x_min, x_max, y_min, y_max): in front of the arm,
    # reachable everywhere with the hand pointing down, and what eval's grid spans.
    workspace: tuple[float, float, float, float] = (0.45, 0.75, -0.15, 0.15)
    # Speed of the target when `SimConfig.moving` is set.
    moving_speed: float = 0.02
    # Start pose: camera this far above the table, over a point drawn in the workspace,
    # looking down, then each joint moved by up to `start_joint_noise`.
    start_height: tuple[float, float] = (0.30, 0.40)
    start_joint_noise: float = 0.03

    def __post_init__(self) -> None:
        x0, x1, y0, y1 = self.workspace
        _require(x0 < x1 and y0 < y1, "workspace must be (x_min, x_max, y_min, y_max)")
        check_number(
            "sim scene", "sphere_diameter", self.sphere_diameter, low=0, high=0.1,
            low_open=True, high_open=True,
        )  # fmt: skip
        check_number("sim scene", "moving_speed", self.moving_speed, low=0)
        lo, hi = self.start_height
        _require(0.05 <= lo <= hi <= 0.6, "start_height must be (low, high) within 0.05..0.6 m")
        check_number("sim scene", "start_joint_noise", self.start_joint_noise, low=0)

    @property
    def sphere_radius(self) -> float:
        return self.sphere_diameter / 2.0


@dataclass(frozen=True)
class CameraConfig:
    """The rendered wrist camera (its intrinsics file is `SimConfig.camera_file`)."""

    # The camera the truth mask is drawn for: the bundle's 400x400 model input, a ROS
    # camera_info YAML. None = the default wrist camera, which grasprt's bundles use.
    model_camera_file: str | None = None
    fps: float = 30.0
    # Std of the sensor noise added to each pixel, in 0..255 units.
    noise_std: float = 2.0
    # Each episode draws a defocus blur sigma (pixels) uniformly up to this.
    max_blur_sigma: float = 0.8

    def __post_init__(self) -> None:
        check_number("sim camera", "fps", self.fps, low=0, high=240, low_open=True)
        check_number("sim camera", "noise_std", self.noise_std, low=0)
        check_number("sim camera", "max_blur_sigma", self.max_blur_sigma, low=0)


@dataclass(frozen=True)
class FaultConfig:
    """Injected faults, for testing the loop's watchdogs. None = never."""

    # The camera stops producing new frames this long after connect (a stalled camera).
    camera_freeze_after_s: float | None = None
    # The robot's state stops updating (same stamp, same values) this long after connect.
    state_stall_after_s: float | None = None


@dataclass(frozen=True)
class BoardPlacement:
    """A calibration board lying on the table: ``calibration.boards`` spec and sizes."""

    spec: str = "charuco:7x5"
    square: float = 0.04
    marker: float | None = 0.03  # ChArUco only
    # The board's centre on the table (base frame x, y) and its turn about z, rad.
    xy: tuple[float, float] = (0.6, 0.0)
    yaw: float = 0.0

    def __post_init__(self) -> None:
        check_number("sim board", "square", self.square, low=0.005, high=0.2)
        _require(len(self.xy) == 2, "board xy must be [x, y] in metres")


_MOUNT_KEYS = {"xyz", "rpy"}


def _vector3(value: object, what: str) -> tuple[float, float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 3
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    _require(ok and all(abs(float(v)) < 1e3 for v in value), f"{what} must be 3 numbers")
    return (float(value[0]), float(value[1]), float(value[2]))  # type: ignore[index]


def mount_error(value: object) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``{xyz = [m, m, m], rpy = [rad, rad, rad]}`` (either may be left out) as (xyz, rpy)."""
    _require(isinstance(value, dict), "camera_mount_error must be a table {xyz = [..], rpy = [..]}")
    assert isinstance(value, dict)
    stray = sorted(set(value) - _MOUNT_KEYS)
    _require(not stray, f"camera_mount_error: unknown key {stray[0] if stray else ''!r} (xyz, rpy)")
    xyz = _vector3(value.get("xyz", [0, 0, 0]), "camera_mount_error.xyz (metres)")
    rpy = _vector3(value.get("rpy", [0, 0, 0]), "camera_mount_error.rpy (radians)")
    _require(max(map(abs, xyz)) <= 0.1, "camera_mount_error.xyz: over 0.1 m is not a mount error")
    _require(max(map(abs, rpy)) <= 0.5, "camera_mount_error.rpy: over 0.5 rad is not a mount error")
    return xyz, rpy


def board_placement(value: object) -> BoardPlacement:
    _require(isinstance(value, dict), "board must be a table {spec = ..., square = ...}")
    assert isinstance(value, dict)
    names = {f.name for f in fields(BoardPlacement)}
    stray = sorted(set(value) - names)
    _require(not stray, f"board: unknown key {stray[0] if stray else ''!r} ({', '.join(names)})")
    values = dict(value)
    if "xy" in values:
        values["xy"] = tuple(values["xy"])
    return BoardPlacement(**values)


@dataclass(frozen=True)
class SimConfig:
    """Everything about the simulation; the first four are what `grasprt run` flags set."""

    gap: GapConfig = field(default_factory=GapConfig)
    # A rolling target: constant speed, random heading, bouncing off the workspace edges.
    moving: bool = False
    # Distractor objects of other colours (spheres and discs), placed around the workspace.
    clutter: int = 0
    # The wrist camera's ROS camera_info YAML; None = drivers/sim/wrist_camera.yaml
    # (400x400, 80 degrees, no distortion). Another file (a real camera's calibration,
    # distortion included) makes the sim render what that camera would see.
    camera_file: str | None = None
    scene: SceneConfig = field(default_factory=SceneConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Fixed integration step of the arm, gripper and sphere.
    substep_s: float = 0.005
    # Where the wrist camera really sits against the URDF's mount: (xyz m, rpy rad) of
    # the true optical frame in the URDF's optical frame (mount.py). None: exactly there.
    camera_mount_error: tuple[tuple[float, float, float], tuple[float, float, float]] | None = (
        None
    )
    # A calibration board printed on the table (hand-eye calibration); None: none.
    board: BoardPlacement | None = None

    def __post_init__(self) -> None:
        check_number("sim", "clutter", self.clutter, low=0, high=20, whole=True)
        check_number("sim", "substep_s", self.substep_s, low=0, high=0.02, low_open=True)


@dataclass(frozen=True)
class SimSettings:
    """The `[sim]` section and the sim's flags: what a user picks of the simulation."""

    gap: str = "default"  # a dynamics-gap preset: none | default | large
    moving: bool = False
    clutter: int = 0
    # The wrist camera's ROS camera_info YAML; None: drivers/sim/wrist_camera.yaml.
    camera_file: str | None = None
    # The camera mounted off the URDF's mount (hand-eye calibration's dry runs):
    # {xyz = [m, m, m], rpy = [rad, rad, rad]}, the true optical frame in the URDF's.
    camera_mount_error: dict | None = None
    # A calibration board on the table: {spec, square, marker, xy, yaw} (BoardPlacement).
    board: dict | None = None

    def __post_init__(self) -> None:
        if self.camera_mount_error is not None:
            mount_error(self.camera_mount_error)
        if self.board is not None:
            board_placement(self.board)
        if self.gap not in GAP_PRESETS:
            raise ConfigError(f"sim: gap must be one of {', '.join(GAP_PRESETS)}, not {self.gap!r}")
        _require(isinstance(self.moving, bool), "moving must be true or false")
        check_number("sim", "clutter", self.clutter, low=0, high=20, whole=True)

    def sim_config(self) -> SimConfig:
        return SimConfig(
            gap=gap_preset(self.gap),
            moving=self.moving,
            clutter=self.clutter,
            camera_file=self.camera_file,
            camera_mount_error=(
                None if self.camera_mount_error is None else mount_error(self.camera_mount_error)
            ),
            board=None if self.board is None else board_placement(self.board),
        )
