"""`grasprt run` and `grasprt check`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from grasprt.errors import ConfigError
from grasprt.options import (
    config_option,
    inference_options,
    live_option,
    load_config,
    robot_options,
    timing_options,
)


class _Progress:
    """Episode lines on stderr; on a terminal also a live line, refreshed 4 times a second."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self._last = 0.0
        self._dirty = False

    def __call__(self, line: str) -> None:
        if self.quiet:
            return
        if self._dirty:
            click.echo("\r\033[K", nl=False, err=True)
            self._dirty = False
        click.echo(line, err=True)

    def cycle(self, episode: int, step: int, info: dict) -> None:
        now = time.monotonic()
        if not self.live or now - self._last < 0.25:
            return
        self._last = now
        self._dirty = True
        click.echo(
            f"\r\033[Kepisode {episode + 1}  step {step}  mask {info.get('mask_area', 0):.0f} px",
            nl=False,
            err=True,
        )


def _fmt(d: dict[str, float]) -> str:
    return f"p50 {d.get('p50', 0):.2f}  p99 {d.get('p99', 0):.2f}  max {d.get('max', 0):.2f} ms"


def print_summary(s: dict[str, Any]) -> None:
    click.echo(
        f"episodes {s['episodes']}  successes {s['successes']} "
        f"({s['success_rate']:.0%})  steps {s['steps']}  limited {s['limited_steps']}  "
        f"holds {s['holds']}  overruns {s['overruns']}  dropped records {s['dropped_records']}"
    )
    click.echo(f"cycle        {'':<10}{_fmt(s['cycle_ms'])}")
    click.echo(f"lateness     {'':<10}{_fmt(s['lateness_ms'])}")
    click.echo(f"photon->cmd  {'':<10}{_fmt(s['photon_to_command_ms'])}")
    for name, st in s["stages"].items():
        click.echo(f"  {name:<21}{_fmt(st)}")
    for f in s["faults"]:
        click.echo(f"fault in episode {f['episode']}: {f['reason']}")
    if s["stopped"]:
        click.echo(f"stopped by {s['stopped']}")


def write_json(path: str, data: dict[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")
    except OSError as e:
        raise ConfigError(f"--json {path}: cannot write ({e.strerror})") from None


@click.command(
    "run",
    epilog="""\b
Examples:
  grasprt run --robot sim
  grasprt run --robot sim --episodes 3 --record run.mcap --json run.json
  grasprt run --robot sim --clock sim --episodes 20 --gap large --moving
  grasprt run --robot sim --camera realsense:recording.db3
  grasprt run --robot sawyer --camera realsense --gripper robotiq:/dev/ttyUSB0 \\
      --heartbeat /dev/ttyACM0 --record arm.mcap --config arm.toml

Exit status: 0 finished, 2 bad input (nothing moved), 3 fault stop (the arm held),
128+N stopped by signal N (SIGINT: 130, SIGTERM: 143).""",
)
@robot_options()
@click.option(
    "--min-coverage",
    type=float,
    default=None,
    metavar="FRACTION",
    help="Refuse a camera that sees less than this fraction of the bundle's view "
    "(the rest is filled grey). [default: 0.5]",
)
@click.option("--episodes", type=int, default=None, help="Episodes to run. [default: 1]")
@click.option(
    "--record",
    default=None,
    metavar="PATH.mcap",
    help="Flight record of every cycle (MCAP; open it in Foxglove).",
)
@click.option(
    "--record-frames",
    "record_frames_every",
    type=int,
    default=None,
    metavar="N",
    help="Also record every Nth camera frame (0: off). [default: 0]",
)
@click.option(
    "--record-frame-format",
    type=click.Choice(["jpeg", "png"]),
    default=None,
    help="Recorded frames as JPEG, or PNG: lossless, what `grasprt replay` needs to be "
    "exact. [default: jpeg]",
)
@live_option()
@click.option(
    "--shadow",
    default=None,
    metavar="DIR",
    help="A second bundle run on the same model view every cycle, never commanded: its "
    "actions, the limiter's would-be verdict and the divergence go to the record.",
)
@click.option(
    "--json", "json_path", default=None, metavar="PATH", help="Write the summary as JSON."
)
@click.option(
    "--gripper",
    default=None,
    metavar="robotiq:PORT",
    help="An external gripper on serial, e.g. robotiq:/dev/ttyUSB0.",
)
@click.option(
    "--heartbeat",
    default=None,
    metavar="PORT",
    help="Serial port of a hardware heartbeat monitor (trips the e-stop if beats stop).",
)
@inference_options()
@timing_options()
@config_option()
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@click.option(
    "--fault-injection",
    default=None,
    hidden=True,
    metavar="DIR",
    help="Test only (grasprt faults): fault-injection shims driven through DIR/control.",
)
def run_cmd(quiet: bool, fault_injection: str | None, **params: Any) -> int:
    """Run the grasping loop: wrist frame -> segmenter -> controller -> limiter -> arm.

    Everything is checked before the arm moves: the settings, the bundle (against
    INTERFACE.md), the drivers, the ONNX sessions and the record file. Then at the
    bundle's rate (10 Hz) each cycle takes the newest frame, runs both models, passes
    the action through the safety limiter and commands the arm. A stale frame or
    state, a missed-deadline streak, a non-finite number or a hung loop makes the arm
    hold.
    """
    from grasprt.drivers.registry import build_drivers
    from grasprt.drivers.sim.views import held_out_views
    from grasprt.runtime.runner import Run

    cfg = load_config(params)
    progress = _Progress(quiet)
    make_drivers, policy = build_drivers, None
    if fault_injection:
        from grasprt.evaluation.faults import inject
        from grasprt.runtime.runner import onnx_policy

        switches = inject.start(fault_injection)
        make_drivers, policy = inject.wrap(switches, build_drivers, onnx_policy)
    run = Run(
        cfg,
        make_drivers=make_drivers,
        policy=policy,
        views=held_out_views,
        progress=progress,
        on_cycle=progress.cycle if progress.live else None,
    )
    kind = "placeholder: random weights" if run.bundle.provenance.get("placeholder") else "trained"
    progress(
        f"bundle {cfg.bundle} ({kind}), robot {cfg.robot}, "
        f"{cfg.episodes} episode(s) x {run.steps} steps at {run.bundle.rate_hz:g} Hz"
        + (" (simulator's clock)" if cfg.sim_clock else "")
    )
    report = run.execute()
    summary = report.summary()
    summary["config"] = cfg.to_dict()
    if not quiet:
        print_summary(summary)
    if cfg.json:
        write_json(cfg.json, summary)
    return exit_status(report)


def exit_status(report: Any) -> int:
    if report.fault:
        click.echo(f"grasprt: fault stop: {report.fault}", err=True)
        return 3
    if report.stopped:
        import signal

        try:
            return 128 + int(signal.Signals[report.stopped])
        except KeyError:
            return 1
    return 0


@click.command("check")
@click.argument("bundle", metavar="DIR")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle's description as JSON.")
def check_cmd(bundle: str, as_json: bool) -> int:
    """Validate a model bundle against INTERFACE.md and load both models in ONNX Runtime."""
    from grasprt.bundle import check_against_profile, describe, load_bundle
    from grasprt.profiles import get_profile
    from grasprt.runtime.inference import Pipeline

    b = load_bundle(bundle)
    check_against_profile(b, get_profile(b.robot))
    Pipeline(b)
    d = describe(b)
    if as_json:
        click.echo(json.dumps(d, indent=2, default=str))
    else:
        placeholder = " (placeholder: random weights)" if b.provenance.get("placeholder") else ""
        click.echo(
            f"{bundle}: ok{placeholder}: robot {b.robot}, {b.rate_hz:g} Hz, "
            f"mask threshold {b.mask_threshold:g}"
        )
    return 0
