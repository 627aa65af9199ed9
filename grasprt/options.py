"""The command-line options `run`, `bench` and `eval` share, defined once, and the one
way a command turns its flags (and `--config FILE.toml`) into a :class:`RunConfig`.

Each option names the config key it sets (``[part] name``), so a flag and a file line
always mean the same thing and `grasprt.config` stays the only place that merges them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click

from grasprt.config import (
    CLOCKS,
    GRAPH_OPTIMIZATIONS,
    PLACEMENTS,
    PRECISIONS,
    PROVIDERS,
    SCHEDS,
    RunConfig,
    build_run_config,
)
from grasprt.drivers.registry import ROBOTS, robot_settings_types
from grasprt.drivers.sim.config import GAP_PRESETS

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

# click parameter name -> config key ("part.name"; "robot.X" is the chosen robot's own
# section; no dot: [run]). Parameters not listed are the command's own business.
KEYS: dict[str, str] = {
    "robot": "robot",
    "camera": "camera",
    "calibration": "calibration",
    "min_coverage": "min_coverage",
    "mount": "mount",
    "mount_max_offset": "mount_max_offset_mm",
    "bundle": "bundle",
    "seed": "seed",
    "max_steps": "max_steps",
    "clock": "clock",
    "sched": "sched",
    "gt_mask": "gt_mask",
    "gap": "robot.gap",
    "moving": "robot.moving",
    "clutter": "robot.clutter",
    "provider": "inference.provider",
    "threads": "inference.intra_op_threads",
    "precision": "inference.precision",
    "fused": "inference.fused",
    "spin": "inference.allow_spinning",
    "graph_optimization": "inference.graph_optimization",
    "episodes": "episodes",
    "record": "record",
    "record_frames_every": "record_frames_every",
    "json_path": "json",
    "gripper": "gripper",
    "heartbeat": "heartbeat",
    "cycles": "bench.cycles",
    "rate_hz": "bench.rate_hz",
    "stress": "bench.stress",
    "tune": "bench.tune",
    "compare_torch": "bench.compare_torch",
    "model_reps": "bench.model_reps",
    "recording": "bench.record",
    "feed": "bench.feed",
    "feed_sync": "bench.feed_sync",
    "stress_cycles": "bench.stress_cycles",
    "tune_attempts": "bench.tune_attempts",
    "save": "bench.save",
    "gpu": "bench.gpu",
    "placement": "inference.placement",
    "grid": "eval.grid",
    "repeats": "eval.repeats",
    "expert": "eval.expert",
    "record_frame_format": "record_frame_format",
    "live": "live",
    "shadow": "shadow",
}


def _robot_help() -> str:
    kinds = "; ".join(f"{k.name}: {k.summary}" for k in ROBOTS.values())
    return f"The arm. {kinds}. [default: sim]"


def _renamed(old: str, new: str) -> Decorator:
    """A hidden flag that says, in one line, what it is called now."""

    def refuse(ctx: click.Context, _param: click.Parameter, value: object) -> None:
        if value:
            raise click.UsageError(f"{old} is now {new}", ctx)

    return click.option(old, is_flag=True, hidden=True, expose_value=False, callback=refuse)


def _apply(options: list[Decorator]) -> Decorator:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return deco


def config_option() -> Decorator:
    return click.option(
        "--config",
        "config_file",
        default=None,
        metavar="FILE.toml",
        help="Settings file ([run], [limiter], [watchdog], [inference], [sim], [bench], "
        "[eval]); the same file serves run, bench and eval. Flags win over it.",
    )


def robot_options(*, simulated_only: bool = False) -> Decorator:
    """What to drive: robot, camera, bundle, and the simulator's world."""
    names = [k.name for k in ROBOTS.values() if k.simulated or not simulated_only]
    return _apply(
        [
            click.option("--robot", type=click.Choice(names), default=None, help=_robot_help()),
            click.option(
                "--camera",
                default=None,
                metavar="SPEC",
                help="Camera spec (sim, realsense[:SERIAL|:FILE.db3], opencv:INDEX|FILE, "
                "gst:PIPELINE). Default: the robot's own (the sim's wrist camera).",
            ),
            click.option(
                "--calibration",
                default=None,
                metavar="FILE.yaml",
                help="Camera intrinsics (ROS camera_info YAML) for cameras that lack their own.",
            ),
            click.option(
                "--bundle",
                default=None,
                metavar="DIR",
                help="Model bundle directory. Default: $GRASPRT_BUNDLE, models/reference, "
                "else models/placeholder.",
            ),
            click.option(
                "--mount",
                default=None,
                metavar="FILE.yaml",
                help="The camera's measured mount (grasprt calibrate-hand-eye): its rotation "
                "off the URDF's is corrected in the model view.",
            ),
            click.option(
                "--mount-max-offset",
                type=float,
                default=None,
                metavar="MM",
                help="Refuse a --mount shifted further than this off the URDF's (a shift "
                "cannot be corrected). [default: 5]",
            ),
            click.option("--seed", type=int, default=None, help="Seed of the world. [default: 0]"),
            click.option(
                "--max-steps",
                type=int,
                default=None,
                help="Steps per episode. [default: 150 simulated, 250 real, as in the paper]",
            ),
            click.option(
                "--gt-mask",
                is_flag=True,
                default=None,
                help="Simulated robots: feed the true mask instead of the segmenter's.",
            ),
            click.option(
                "--gap",
                type=click.Choice(tuple(GAP_PRESETS)),
                default=None,
                help="Sim: the sim-to-real dynamics gap (latency, lag, noise, bias). "
                "[default: default]",
            ),
            click.option("--moving", is_flag=True, default=None, help="Sim: the sphere rolls."),
            click.option(
                "--clutter", type=int, default=None, help="Sim: distractor objects. [default: 0]"
            ),
        ]
    )


def timing_options(*, clock_default: str = "wall") -> Decorator:
    """The clock and the scheduling, named the same in every command."""
    return _apply(
        [
            click.option(
                "--clock",
                type=click.Choice(CLOCKS),
                default=None,
                help="wall: the monotonic clock at the bundle's rate, as a real arm runs; "
                "sim: the simulator's clock, as fast as the machine allows (simulated "
                f"robots only). [default: {clock_default}]",
            ),
            click.option(
                "--sched",
                type=click.Choice(SCHEDS),
                default=None,
                help="fifo: real-time scheduling (SCHED_FIFO, locked memory, a pinned loop "
                "thread) where the OS permits, a one-line note where not; normal: the OS's "
                "defaults. Never on the sim clock. [default: fifo]",
            ),
            _renamed("--fast", "--clock sim"),
            _renamed("--max", "--clock sim"),
            _renamed("--realtime", "--sched fifo (scheduling) or --clock wall (the clock)"),
            _renamed("--no-realtime", "--sched normal"),
        ]
    )


def inference_options(*, tuning: bool = False) -> Decorator:
    options = [
        click.option(
            "--provider",
            type=click.Choice(PROVIDERS),
            default=None,
            help="Execution provider. [default: cpu]",
        ),
        click.option("--threads", type=int, default=None, help="Intra-op threads. [default: 2]"),
        click.option(
            "--precision",
            type=click.Choice(PRECISIONS),
            default=None,
            help="Segmenter precision; reduced ones are built at load time and refused unless "
            "their mask IoU against fp32 passes the gate (see grasprt bench). [default: fp32]",
        ),
        click.option(
            "--placement",
            type=click.Choice(PLACEMENTS),
            default=None,
            help="Where the run's threads go: auto (loop pinned with 1 thread), shared, split "
            "(camera and recorder on the first core); `bench --tune` measures. [default: auto]",
        ),
    ]
    if tuning:
        options += [
            click.option(
                "--fused/--two-models",
                default=None,
                help="One fused graph per cycle, or the two models apart. [default: fused]",
            ),
            click.option("--spin/--no-spin", default=None, help="ONNX Runtime worker spinning."),
            click.option(
                "--opt",
                "graph_optimization",
                type=click.Choice(GRAPH_OPTIMIZATIONS),
                default=None,
                help="ONNX Runtime graph optimisation. [default: all]",
            ),
        ]
    return _apply(options)


def live_option() -> Decorator:
    """`--live [HOST:]PORT`: the record's topics on a Foxglove WebSocket."""
    return click.option(
        "--live",
        default=None,
        metavar="[HOST:]PORT",
        help="Stream the record's topics live to Foxglove (WebSocket; needs foxglove-sdk). "
        "Binds 127.0.0.1 unless a host is given.",
    )


def load_config(
    params: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None
) -> RunConfig:
    """The command's configuration: defaults < `defaults` < --config file < flags."""
    flags = {KEYS[name]: value for name, value in params.items() if name in KEYS}
    return build_run_config(
        params.get("config_file"), flags, robots=robot_settings_types(), defaults=defaults
    )
