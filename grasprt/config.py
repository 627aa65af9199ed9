"""The configuration of every command: typed, loaded from a TOML file and flags in one
place, validated at start-up (before any driver connects) and recorded with every run.

`grasprt run`, `grasprt bench` and `grasprt eval` read the same file; each takes the
parts it uses. A file holds the same names as the flags, grouped by part:

    [run]        robot, camera, bundle, episodes, seed, max_steps, record, clock, sched, ...
    [limiter]    floor_z, floor_clearance, velocity_factor, joint_margin, tracking_steps, ...
    [watchdog]   frame_hold_s, frame_stop_s, state_hold_s, state_stop_s, overrun_streak, ...
    [inference]  provider, intra_op_threads, graph_optimization, allow_spinning, fused, ...
    [perception] enabled, lost_cycles, min_blob_px, blob_ratio, area, near_m, ...
    [sim], [sawyer], ...   the chosen robot's own settings (its driver's dataclass)
    [bench]      cycles, rate_hz, stress, tune, compare_torch, model_reps, record
    [eval]       grid, repeats, expert

Flags win over the file; the file wins over the defaults. Three words are used the
same way everywhere:

    clock = "wall"   the monotonic clock, at the bundle's rate: how a real arm runs
    clock = "sim"    the simulator's clock, as fast as the machine allows (a simulated
                     robot only); `eval` runs on it unless told otherwise
    sched = "fifo"   real-time scheduling: SCHED_FIFO, locked memory and a pinned loop
                     thread where the OS permits; "normal" leaves the OS's defaults

This module is the bottom layer: it imports nothing from runtime, drivers, calibration
or export. Robots' own settings classes are handed in by the caller (the drivers'
registry), so a new robot adds its section without touching this file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grasprt.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
CLOCKS = ("wall", "sim")
SCHEDS = ("fifo", "normal")
# The execution providers `--provider` names (runtime/inference.py maps them to ONNX
# Runtime's names), the segmenter precisions and ONNX Runtime's optimisation levels.
PROVIDERS = ("cpu", "cuda", "tensorrt", "openvino")
PRECISIONS = ("fp32", "int8", "fp16", "bf16")
GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")
PLACEMENTS = ("auto", "shared", "split")
FEEDS = ("prerendered", "live")


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


# --- the one validation helper -------------------------------------------------------


def check_number(
    part: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    whole: bool = False,
) -> None:
    """Refuse, in one line naming the setting, a value that is not a finite number (a
    whole one with ``whole``) in [low, high] (open ends with ``*_open``)."""
    what = setting_name(part, name)
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise ConfigError(f"{what} must be {kind}, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        bounds = _range(low, high, low_open, high_open)
        raise ConfigError(f"{what} must be {bounds}, got {value!r}")


def setting_name(part: str, name: str) -> str:
    """How a message names a setting: `[run]`'s by their flags (that is how most are
    given), the others by section (`[limiter] velocity_factor`)."""
    return f"--{name.replace('_', '-')}" if part == "run" else f"[{part}] {name}"


def _range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_choice(part: str, name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        what = setting_name(part, name)
        raise ConfigError(f"{what} must be one of {', '.join(choices)}, not {value!r}")


# --- one settings type per part ------------------------------------------------------


@dataclass(frozen=True)
class LimiterSettings:
    """The safety limiter's knobs (runtime/limiter.py); the rest comes from the bundle
    (rate, action scale) and the robot profile (limits, kinematics)."""

    # Fraction of the profile's velocity limit one step may use.
    velocity_factor: float = 0.5
    # MoveIt Servo's default joint_limit_margins, rad.
    joint_margin: float = 0.1
    # The floor plane (base frame z, m): the table top on a real arm. None: the
    # driver's own table (the simulator knows it), else no floor at all.
    floor_z: float | None = None
    # The wrist, hand and fingertips stay this far above the floor plane, m.
    floor_clearance: float = 0.002
    # The target stays within this many max-steps of the *measured* position, so an arm
    # that is blocked or lagging is not wound up by commands that run ahead of it.
    tracking_steps: float = 3.0
    # Hysteresis: close above +band, open below -band, otherwise keep. Without it a
    # request hovering near 0 would chatter the gripper every cycle.
    gripper_band: float = 0.1
    # Minimum cycles between gripper changes (a close takes ~0.4 s on the Sawyer).
    gripper_dwell: int = 3
    # Keep a closed gripper closed while its measured position lies in this band of the
    # 0 (open) .. 1 (closed) reading: fingers stopped on something, not shut on nothing.
    # A controller that looks past its own fingers loses sight of what it holds and may
    # ask to open mid-lift (docs/mujoco.md); with this band the request is overruled
    # (`gripper_held`) until the fingers shut past it or open. None: the policy decides.
    hold_grip: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        p = "limiter"
        check_number(p, "velocity_factor", self.velocity_factor, low=0, high=1, low_open=True)
        check_number(p, "joint_margin", self.joint_margin, low=0)
        if self.floor_z is not None:
            check_number(p, "floor_z", self.floor_z)
        check_number(p, "floor_clearance", self.floor_clearance, low=0)
        # Below one step a free arm could not make a full step, and the loop would crawl.
        check_number(p, "tracking_steps", self.tracking_steps, low=1)
        check_number(p, "gripper_band", self.gripper_band, low=0, high=1, high_open=True)
        check_number(p, "gripper_dwell", self.gripper_dwell, low=0, whole=True)
        if self.hold_grip is not None:
            # The same shape as a mask-area range: two fractions, 0 <= low < high <= 1.
            check_area_range(f"[{p}] hold_grip", self.hold_grip)
            low, high = self.hold_grip
            object.__setattr__(self, "hold_grip", (float(low), float(high)))

    def floor_height(self, table_z: float | None) -> float | None:
        """The height the arm's lowest point is kept above: the configured floor plane
        (else the driver's table) plus the clearance; None: no floor."""
        plane = self.floor_z if self.floor_z is not None else table_z
        return None if plane is None else plane + self.floor_clearance


@dataclass(frozen=True)
class WatchdogSettings:
    """Staleness and liveness limits (runtime/watchdog.py)."""

    # A frame older than this is not acted on: at 10 Hz it is 2.5 cycles old.
    frame_hold_s: float = 0.25
    frame_stop_s: float = 1.0
    state_hold_s: float = 0.2
    state_stop_s: float = 1.0
    overrun_streak: int = 5
    heartbeat_s: float = 0.5
    # A stamp further than this ahead of the loop's clock means the camera or robot
    # stamps on another clock; its age would then never grow, so it is a fault.
    future_tolerance_s: float = 0.1

    def __post_init__(self) -> None:
        p = "watchdog"
        for name in ("frame_hold_s", "frame_stop_s", "state_hold_s", "state_stop_s"):
            check_number(p, name, getattr(self, name), low=0, low_open=True)
        check_number(p, "heartbeat_s", self.heartbeat_s, low=0, low_open=True)
        for what in ("frame", "state"):
            hold, stop = getattr(self, f"{what}_hold_s"), getattr(self, f"{what}_stop_s")
            if hold >= stop:
                raise ConfigError(
                    f"[watchdog] {what}_hold_s ({hold}) must be below {what}_stop_s ({stop})"
                )
        check_number(p, "overrun_streak", self.overrun_streak, low=1, whole=True)
        check_number(p, "future_tolerance_s", self.future_tolerance_s, low=0)


@dataclass(frozen=True)
class PerceptionSettings:
    """The perception-health gate (runtime/perception.py): checks on the segmenter's
    mask before the controller's action is used; a failed check holds the arm. The
    defaults were chosen against the reference bundle's masks (docs/perception.md)."""

    enabled: bool = True
    # Hold once the mask has been empty this many cycles in a row after the target was
    # seen this episode (the arm would otherwise act on nothing).
    lost_cycles: int = 3
    # Not while the measured gripper is at least this closed (0 open, 1 closed): closed
    # fingers hide what they hold from a wrist camera (MuJoCo's Sawyer: 0.70 on the
    # sphere), so an empty mask then is no sign of a lost target. 1.0 keeps the rule on
    # even closed on nothing.
    lost_ignored_closed: float = 0.5
    # An empty mask when the target was last seen at the edge of the robot's own hand
    # (where the camera gives the hand's footprint: MuJoCo's fingers) is the target gone
    # behind it: no hold for this many cycles (the arm moving on brings it back; holding
    # still keeps it hidden), then `lost` as usual.
    hidden_cycles: int = 30
    # A second blob this large (px of the mask) and at least `blob_ratio` of the
    # target's, where the target could be, is a second candidate: hold. Specks below
    # either, and blobs beyond the jump bound of the tracked target, are ignored.
    min_blob_px: int = 3
    blob_ratio: float = 0.8
    # A blob touching the mask's border counts as a rival too (off: an object cut by
    # the edge of the view is no rival; see docs/perception.md).
    edge_rivals: bool = False
    # The mask's area as a fraction of its pixels: (low, high); None: the bundle's
    # provenance `mask_area` when it declares one, else any non-empty area up to 0.25.
    area: tuple[float, float] | None = None
    # The centroid jump bound: the nearest the target can be to the camera (m), the
    # target's own speed (m/s) and a segmentation jitter allowance (mask px).
    near_m: float = 0.1
    target_speed: float = 0.0
    jitter_px: float = 4.0

    def __post_init__(self) -> None:
        p = "perception"
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"[perception] enabled must be true or false, got {self.enabled!r}")
        if not isinstance(self.edge_rivals, bool):
            raise ConfigError(
                f"[perception] edge_rivals must be true or false, got {self.edge_rivals!r}"
            )
        check_number(p, "lost_cycles", self.lost_cycles, low=1, whole=True)
        check_number(p, "lost_ignored_closed", self.lost_ignored_closed, low=0, high=1)
        check_number(p, "hidden_cycles", self.hidden_cycles, low=0, whole=True)
        check_number(p, "min_blob_px", self.min_blob_px, low=1, whole=True)
        check_number(p, "blob_ratio", self.blob_ratio, low=0, high=1, low_open=True)
        if self.area is not None:
            check_area_range(f"[{p}] area", self.area)
            object.__setattr__(self, "area", (float(self.area[0]), float(self.area[1])))
        check_number(p, "near_m", self.near_m, low=0, low_open=True)
        check_number(p, "target_speed", self.target_speed, low=0)
        check_number(p, "jitter_px", self.jitter_px, low=0)


def check_area_range(what: str, value: object) -> None:
    problem = area_range_problem(value)
    if problem:
        raise ConfigError(f"{what} {problem}")


def area_range_problem(value: object) -> str | None:
    """Why `value` is not a mask-area range (two fractions of the mask, 0 <= low <
    high <= 1), or None. The bundle's provenance `mask_area` is checked with it too."""
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(v) for v in value)
        and 0 <= value[0] < value[1] <= 1
    )
    if ok:
        return None
    return f"must be [low, high] fractions with 0 <= low < high <= 1, got {value!r}"


@dataclass(frozen=True)
class InferenceSettings:
    """How the bundle's graphs run (runtime/inference.py)."""

    provider: str = "cpu"
    # Threads for one model run. Two on a 2-core PC leaves nothing for the camera and
    # recorder threads; `grasprt bench` measures the trade-off on the robot PC.
    intra_op_threads: int = 2
    # Graph optimisation "all" (NCHWc convolutions) was ~1.7x faster than "basic" for
    # the paper's segmenter, and spinning with 2 threads collapsed under contention.
    graph_optimization: str = "all"
    # Spinning worker threads burn a core between runs: at 10 Hz that buys a few
    # microseconds of wake-up and costs a core the camera thread needs. Off by default.
    allow_spinning: bool = False
    # One session run per cycle (segmenter, threshold and controller composed into one
    # graph at load time, see fused.py) instead of two. On by default: `grasprt bench
    # --tune` found it ahead of the two-model path in nearly every setting (docs/bench.md).
    fused: bool = True
    # Segmenter precision: fp32 (the bundle as is), or a reduced one built at load time
    # and admitted only when its masks match fp32's (IoU gate, see quantize.py).
    precision: str = "fp32"
    # Where the run's threads go (runtime/realtime.py): "auto" pins the loop thread to
    # the last core when inference runs in one thread; "shared" pins nothing; "split"
    # also puts the camera and recorder threads on the first core, apart from the loop.
    # `grasprt bench --tune` measures them and saves the best.
    placement: str = "auto"
    # What `grasprt bench --tune --save` measured this on: another CPU warns, and a
    # reduced precision is gated again there.
    tuned_cpu: str = ""
    tuned_isa: tuple[str, ...] = ()
    # Run the last cycle's graphs again on its own inputs between cycles, ending this
    # long before each slot (0: off; never on the sim clock). Called once a period, the
    # models run on caches other work has taken and on engine threads that have gone to
    # sleep, about 1.6x their back-to-back time here (bench: models_at_cadence_ms); a
    # run just before the slot finds them warm. It costs one more model run a period.
    prewarm_ms: float = 0.0

    def __post_init__(self) -> None:
        p = "inference"
        object.__setattr__(self, "tuned_isa", tuple(self.tuned_isa))
        check_choice(p, "placement", self.placement, PLACEMENTS)
        check_choice(p, "provider", self.provider, PROVIDERS)
        check_number(
            p,
            "intra_op_threads",
            self.intra_op_threads,
            low=1,
            high=(os.cpu_count() or 1) * 4,
            whole=True,
        )
        check_choice(p, "graph_optimization", self.graph_optimization, GRAPH_OPTIMIZATIONS)
        check_choice(p, "precision", self.precision, PRECISIONS)
        check_number(p, "prewarm_ms", self.prewarm_ms, low=0, high=50)


@dataclass(frozen=True)
class BenchSettings:
    """`grasprt bench` (runtime/bench.py)."""

    cycles: int = 300
    rate_hz: float | None = None  # None: the bundle's rate; ignored on the sim clock
    stress: int = 0  # busy processes beside a second loop run
    tune: bool = False
    compare_torch: bool = False
    model_reps: int = 60
    record: bool = True  # record to a temporary file, as a run with --record does
    # The sim camera's frames: "prerendered" before timing and delivered by a thread at
    # the camera's rate (a camera that costs the loop's cores nothing, as on a robot),
    # or "live" (rendered on the loop's cores while it runs).
    feed: str = "prerendered"
    # Prerendered frames phase-locked to the loop (a camera synchronised to it, as a
    # hardware trigger gives), or free-running at the camera's rate.
    feed_sync: bool = True
    stress_cycles: int | None = None  # the stress run's cycles; None: min(cycles, 600)
    tune_attempts: int = 25  # simulated grasp attempts of the tuned pick's closed-loop check
    save: str | None = None  # write the tuned pick as an [inference] TOML section
    gpu: bool = False  # also time the CUDA and TensorRT providers (an NVIDIA GPU)

    def __post_init__(self) -> None:
        p = "bench"
        check_choice(p, "feed", self.feed, FEEDS)
        check_number(p, "tune_attempts", self.tune_attempts, low=1, whole=True)
        if self.stress_cycles is not None:
            check_number(p, "stress_cycles", self.stress_cycles, low=1, whole=True)
        check_number(p, "cycles", self.cycles, low=1, whole=True)
        if self.rate_hz is not None:
            check_number(p, "rate_hz", self.rate_hz, low=0, low_open=True)
        check_number(p, "stress", self.stress, low=0, high=64, whole=True)
        check_number(p, "model_reps", self.model_reps, low=5, whole=True)


@dataclass(frozen=True)
class EvalSettings:
    """`grasprt eval`: the paper's protocol (evaluation/evaluate.py)."""

    grid: int = 50  # sphere positions on a regular grid
    repeats: int = 3  # attempts per position, each with its own seed
    expert: bool = False  # the scripted expert acts instead of the bundle

    def __post_init__(self) -> None:
        check_number("eval", "grid", self.grid, low=1, whole=True)
        check_number("eval", "repeats", self.repeats, low=1, whole=True)


@dataclass(frozen=True)
class RunConfig:
    robot: str = "sim"
    camera: str | None = None  # None: the robot's own camera (the sim's wrist camera)
    calibration: str | None = None
    # Refuse a camera that sees less than this fraction of the bundle's view.
    min_coverage: float = 0.5
    # The camera's measured mount (grasprt calibrate-hand-eye's YAML); None: the URDF's.
    mount: str | None = None
    # A mount shifted further than this from the URDF's is refused (the model view
    # corrects only its rotation).
    mount_max_offset_mm: float = 5.0
    bundle: str = ""
    episodes: int = 1
    seed: int = 0
    # None: the robot's default (150 simulated, 250 real, as in the paper).
    max_steps: int | None = None
    record: str | None = None
    record_frames_every: int = 0
    json: str | None = None
    clock: str = "wall"
    sched: str = "fifo"  # off on the sim clock whatever it says (runtime/realtime.py)
    gt_mask: bool = False
    gripper: str | None = None
    heartbeat: str | None = None
    limiter: LimiterSettings = field(default_factory=LimiterSettings)
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    perception: PerceptionSettings = field(default_factory=PerceptionSettings)
    # The chosen robot's own settings ([sim], [sawyer]: its driver's dataclass); None:
    # its defaults.
    robot_settings: Any = None
    bench: BenchSettings = field(default_factory=BenchSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    # Recorded frames as JPEG (small) or PNG (lossless: what `grasprt replay` needs).
    record_frame_format: str = "jpeg"
    # A Foxglove live view on [HOST:]PORT (127.0.0.1 unless a host is given).
    live: str | None = None
    # A second bundle run on the same model view every cycle, never commanded.
    shadow: str | None = None

    def __post_init__(self) -> None:
        p = "run"
        check_choice(p, "record_frame_format", self.record_frame_format, ("jpeg", "png"))
        check_number(p, "min_coverage", self.min_coverage, low=0, high=1, low_open=True)
        check_number(p, "mount_max_offset_mm", self.mount_max_offset_mm, low=0)
        check_number(p, "episodes", self.episodes, low=1, whole=True)
        check_number(p, "seed", self.seed, low=0, whole=True)
        if self.max_steps is not None:
            check_number(p, "max_steps", self.max_steps, low=1, whole=True)
        check_number(p, "record_frames_every", self.record_frames_every, low=0, whole=True)
        check_choice(p, "clock", self.clock, CLOCKS)
        check_choice(p, "sched", self.sched, SCHEDS)

    @property
    def sim_clock(self) -> bool:
        return self.clock == "sim"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_PARTS: dict[str, type] = {
    "limiter": LimiterSettings,
    "watchdog": WatchdogSettings,
    "inference": InferenceSettings,
    "perception": PerceptionSettings,
    "bench": BenchSettings,
    "eval": EvalSettings,
}
# Names a file or flag may still use from before the clock words were settled.
_RENAMED = {
    "fast": 'clock = "sim" (--clock sim)',
    "realtime": 'sched = "fifo" or "normal" (--sched), or clock = "wall" (--clock wall)',
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        hint = _RENAMED.get(unknown[0])
        if hint:
            raise ConfigError(f"{where}: {unknown[0]!r} is now {hint}")
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


def build_run_config(
    file: str | Path | None,
    flags: Mapping[str, Any],
    *,
    robots: Mapping[str, type] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Merge defaults < ``defaults`` < file < flags (flags that are None were not given).

    ``robots`` maps each robot name to its settings dataclass (the drivers' registry
    has them): its ``[name]`` section is built with it, and a flag ``robot.X`` sets
    field X of the chosen robot's settings. ``defaults`` are a command's own defaults
    for ``[run]`` (eval: ``clock = "sim"``).
    """
    robots = robots or {}
    doc = load_file(file) if file else {}
    where = str(file) if file else "flags"
    unknown = sorted(set(doc) - {"run", *_PARTS, *robots})
    if unknown:
        raise ConfigError(f"{where}: unknown section [{unknown[0]}]")
    run = {**(defaults or {}), **doc.get("run", {})}
    sections = {k: dict(doc.get(k, {})) for k in (*_PARTS, *robots)}
    robot_flags: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        part, dot, name = key.partition(".")
        if not dot:
            run[key] = value
        elif part == "robot":
            robot_flags[name] = value
        else:
            sections[part][name] = value
    built = {k: _build(cls, sections[k], f"{where} [{k}]") for k, cls in _PARTS.items()}
    run.setdefault("bundle", str(default_bundle()))
    name = run.get("robot", RunConfig.robot)
    # Every robot section is checked (a typo in [sawyer] is found on the sim too); the
    # chosen robot's is kept, with its flags on top.
    if robot_flags:
        fields = {f.name for f in dataclasses.fields(robots[name])} if name in robots else set()
        stray = sorted(set(robot_flags) - fields)
        if stray:
            flag = stray[0].replace("_", "-")
            raise ConfigError(f"--{flag} does not apply to --robot {name}")
    for other, cls in robots.items():
        values = {**sections[other], **(robot_flags if other == name else {})}
        settings = _build(cls, values, f"{where} [{other}]")
        if other == name:
            built["robot_settings"] = settings
    return _build(RunConfig, {**run, **built}, f"{where} [run]")
