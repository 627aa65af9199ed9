"""The run configuration: typed, loaded from a TOML file and flags in one place,
validated at start-up (before any driver connects) and recorded with every run.

A file holds the same names as the flags, grouped by part:

    [run]        robot, camera, bundle, episodes, seed, max_steps, record, fast, ...
    [limiter]    velocity_factor, joint_margin, floor_clearance, tracking_steps, ...
    [watchdog]   frame_hold_s, frame_stop_s, state_hold_s, state_stop_s, ...
    [inference]  provider, intra_op_threads, graph_optimization, allow_spinning
    [sim]        gap, moving, clutter

Flags win over the file; the file wins over the defaults.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grasprt.errors import ConfigError
from grasprt.runtime.inference import InferenceConfig
from grasprt.runtime.watchdog import StalenessConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
ROBOTS = ("sim", "sawyer")
# Paper: 150 steps in simulation, 250 on the real robot (it moves slower).
DEFAULT_MAX_STEPS = {"sim": 150, "sawyer": 250}


def default_bundle() -> Path:
    """The bundle `grasprt run` uses when none is named: $GRASPRT_BUNDLE, else the
    reference models when present, else the random-weight placeholder."""
    env = os.environ.get("GRASPRT_BUNDLE")
    if env:
        return Path(env)
    for name in ("reference", "placeholder"):
        p = REPO_ROOT / "models" / name
        if (p / "bundle.json").exists():
            return p
    return REPO_ROOT / "models" / "placeholder"


@dataclass(frozen=True)
class LimiterSettings:
    """The limiter's knobs that are not fixed by the bundle or the profile."""

    velocity_factor: float = 0.5
    joint_margin: float = 0.1
    # The hand and fingertips stay this far above the table top (sim) or the floor
    # plane the operator configures (hardware; `floor_z`).
    floor_clearance: float = 0.002
    floor_z: float | None = None
    tracking_steps: float = 3.0
    gripper_band: float = 0.1
    gripper_dwell: int = 3


@dataclass(frozen=True)
class SimSettings:
    gap: str = "default"
    moving: bool = False
    clutter: int = 0
    camera_file: str | None = None


@dataclass(frozen=True)
class RunConfig:
    robot: str = "sim"
    camera: str | None = None  # None: the robot's own camera (the sim's wrist camera)
    calibration: str | None = None
    # Refuse a camera that sees less than this fraction of the bundle's view.
    min_coverage: float = 0.5
    bundle: str = ""
    episodes: int = 1
    seed: int = 0
    max_steps: int | None = None
    record: str | None = None
    record_frames_every: int = 0
    json: str | None = None
    fast: bool = False  # sim only: run on the simulator's clock, as fast as possible
    gt_mask: bool = False
    gripper: str | None = None
    heartbeat: str | None = None
    # SCHED_FIFO, locked memory and a pinned loop thread where the OS permits (a note
    # where not); off on the simulator's fast clock (runtime/realtime.py).
    realtime: bool = True
    limiter: LimiterSettings = field(default_factory=LimiterSettings)
    watchdog: StalenessConfig = field(default_factory=StalenessConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    sim: SimSettings = field(default_factory=SimSettings)

    def __post_init__(self) -> None:
        if self.robot not in ROBOTS:
            raise ConfigError(f"--robot must be one of {', '.join(ROBOTS)}, not {self.robot!r}")
        if not 0.0 < self.min_coverage <= 1.0:
            raise ConfigError("--min-coverage must be in (0, 1]")
        if self.episodes < 1:
            raise ConfigError("--episodes must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("--max-steps must be at least 1")
        if self.record_frames_every < 0:
            raise ConfigError("--record-frames must be 0 (off) or a positive decimation")
        if self.fast and self.robot != "sim":
            raise ConfigError("--fast runs on the simulator's clock: it needs --robot sim")
        if self.fast and self.camera not in (None, "sim"):
            raise ConfigError("--fast needs the simulated camera (a real camera runs in real time)")
        if self.gt_mask and self.robot != "sim":
            raise ConfigError("--gt-mask needs --robot sim (only the simulator knows the truth)")
        if self.robot == "sawyer" and self.camera in (None, "sim"):
            raise ConfigError("--robot sawyer needs a real camera, e.g. --camera realsense")

    @property
    def steps(self) -> int:
        return self.max_steps or DEFAULT_MAX_STEPS[self.robot]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "limiter": LimiterSettings,
    "watchdog": StalenessConfig,
    "inference": InferenceConfig,
    "sim": SimSettings,
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        known = ", ".join(sorted(names))
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {known})")
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def load_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None


def build_run_config(file: str | Path | None, flags: dict[str, Any]) -> RunConfig:
    """Merge defaults < file < flags (flags that are None were not given)."""
    doc = load_file(file) if file else {}
    where = str(file) if file else "flags"
    unknown = sorted(set(doc) - {"run", *_SECTIONS})
    if unknown:
        raise ConfigError(f"{where}: unknown section [{unknown[0]}]")
    run = dict(doc.get("run", {}))
    sections: dict[str, dict[str, Any]] = {k: dict(doc.get(k, {})) for k in _SECTIONS}
    for key, value in flags.items():
        if value is None:
            continue
        if "." in key:
            sec, name = key.split(".", 1)
            sections[sec][name] = value
        else:
            run[key] = value
    built = {k: _build(cls, sections[k], f"{where} [{k}]") for k, cls in _SECTIONS.items()}
    run.setdefault("bundle", str(default_bundle()))
    return _build(RunConfig, {**run, **built}, f"{where} [run]")
