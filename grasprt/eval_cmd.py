"""`grasprt eval`: the paper's grid protocol in the simulator, through the real loop."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from grasprt.errors import ConfigError
from grasprt.figures import save_figure
from grasprt.options import (
    config_option,
    inference_options,
    load_config,
    robot_options,
    timing_options,
)


def print_table(s: dict[str, Any]) -> None:
    """Success per grid position: rows along x (away from the arm), columns along y."""
    per = s["per_position"]
    xs = sorted({p["x"] for p in per})
    ys = sorted({p["y"] for p in per})
    cell = {(p["x"], p["y"]): p for p in per}
    click.echo("successes per position (rows x in m, columns y in m)")
    click.echo("  x \\ y " + "".join(f"{y:>8.3f}" for y in ys))
    for x in xs:
        row = "".join(
            f"{cell[(x, y)]['successes']:>5}/{cell[(x, y)]['attempts']:<2}"
            if (x, y) in cell
            else " " * 8
            for y in ys
        )
        click.echo(f"{x:>7.3f} {row}")
    set_ = s["settings"]
    who = (
        "expert"
        if set_["expert"]
        else ("controller, true masks" if set_["gt_mask"] else "segmenter + controller")
    )
    click.echo(
        f"{who}, gap {set_['gap']}{', moving' if set_['moving'] else ''}: "
        f"{s['successes']}/{s['attempts']} = {s['success_rate']:.3f}  "
        f"mean steps {s['mean_steps']:.1f}  "
        f"loop-vs-truth disagreements {s['detection_disagreements']}  faults {len(s['faults'])}"
    )
    failed = {k: n for k, n in (s.get("outcomes") or {}).items() if n and k != "success"}
    if failed:
        # What the simulator saw go wrong, commonest first (evaluation/attempt_trace.py).
        by = ", ".join(f"{k} {n}" for k, n in sorted(failed.items(), key=lambda kv: -kv[1]))
        click.echo(f"failures: {by}")
    held = s.get("perception_holds") or {}
    if held:
        by = ", ".join(f"{k} {n}" for k, n in sorted(held.items()))
        click.echo(
            f"perception holds: {by} (in {s['attempts_with_perception_holds']} attempts)"
        )


def plot_success_map(s: dict[str, Any], out: str) -> None:
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ConfigError(
            "--plot needs matplotlib: pip install 'grasprt[plot]' (or matplotlib)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = s["per_position"]
    fig, ax = plt.subplots(figsize=(5, 5))
    rate = [p["successes"] / p["attempts"] for p in per]
    # The view from above, the arm's base at the bottom: y to the left, x up.
    sc = ax.scatter(
        [-p["y"] for p in per], [p["x"] for p in per], c=rate, cmap="RdYlGn", vmin=0, vmax=1, s=160
    )
    for p in per:
        ax.annotate(
            f"{p['successes']}/{p['attempts']}",
            (-p["y"], p["x"]),
            ha="center",
            va="center",
            fontsize=6,
        )
    fig.colorbar(sc, ax=ax, label="success rate")
    ax.set_xlabel("-y (m), base frame: left of the arm is right")
    ax.set_ylabel("x (m), away from the arm")
    ax.set_aspect("equal")
    ax.set_title(f"success {s['successes']}/{s['attempts']} = {s['success_rate']:.2f}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, str(out), dpi=100)


@click.command(
    "eval",
    epilog="""\b
Examples:
  grasprt eval --robot sim                          50 positions x 3 with the default bundle
  grasprt eval --robot sim --gt-mask --json eval.json
  grasprt eval --robot sim --gap large --moving --plot map.png
  grasprt eval --robot sim --expert                 the scripted teacher's own rate
  grasprt eval --config arm.toml                    the same [limiter] floor_z as the arm
  grasprt eval --robot mujoco --gt-mask --trace-labels t.jsonl
                                                    the bundle beside the expert's labels

Exit status: 0 finished, 2 bad input, 130/143 stopped (the attempts that finished are
printed and written).""",
)
@robot_options(simulated_only=True)
@click.option(
    "--grid",
    type=int,
    default=None,
    help="Sphere positions, on a regular grid over the workspace. [default: 50]",
)
@click.option(
    "--repeats",
    type=int,
    default=None,
    help="Attempts per position, each with its own seed (start pose, bias, look). [default: 3]",
)
@click.option("--expert", is_flag=True, default=None, help="Let the scripted expert act instead.")
@inference_options()
@timing_options(clock_default="sim")
@config_option()
@click.option(
    "--json", "json_path", default=None, metavar="PATH", help="Write the results as JSON."
)
@click.option("--plot", "plot_path", default=None, metavar="PNG", help="Draw the success map.")
@click.option(
    "--trace-labels",
    "trace_path",
    default=None,
    metavar="PATH.jsonl",
    help="Write one line a cycle: the bundle's gripper output and joint request beside the "
    "scripted expert's label of the same state (it labels, never acts), and the simulator's "
    "truth (held, lift, reading, mask cells). Tells a training problem from a label problem.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def eval_cmd(
    json_path: str | None, plot_path: str | None, trace_path: str | None, quiet: bool,
    **params: Any,
) -> None:  # fmt: skip
    """Grasp success in the simulator under the paper's protocol.

    The sphere is placed on a regular grid over the reachable table area and each
    position is tried REPEATS times; an attempt ends in a grasp (the sphere held and
    lifted 5 cm) or after MAX-STEPS. Each attempt is a `grasprt run` episode: the same
    loop, segmenter, limiter and watchdogs, with the same --config file, on the
    simulator's clock unless --clock wall.
    """
    from grasprt.evaluation.evaluate import evaluate, settings_of
    from grasprt.run_cmd import write_json

    if plot_path:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("--plot needs matplotlib: pip install 'grasprt[plot]'") from None
    cfg = load_config(params, defaults={"clock": "sim"})
    _check_mount(cfg)
    trace = _trace_file(trace_path, cfg) if trace_path else None
    s = settings_of(cfg)
    if not quiet:
        click.echo(
            f"eval: {cfg.bundle}, {s['grid']} positions x {s['repeats']}, gap {s['gap']}"
            + (", moving" if s["moving"] else "")
            + (", true masks" if cfg.gt_mask else "")
            + (", expert acting" if s["expert"] else ""),
            err=True,
        )
    if trace is not None:
        from grasprt.evaluation.label_trace import Disagreements

        counts = Disagreements()
        with trace:
            report = evaluate(cfg, progress=_progress(quiet), policy=_labelled(trace, counts))
    else:
        report = evaluate(cfg, progress=_progress(quiet))
    summary = report.summary()
    print_table(summary)
    if trace is not None:
        click.echo(counts.line(str(trace_path)))
    if json_path:
        write_json(json_path, summary)
    if plot_path:
        plot_success_map(summary, str(Path(plot_path)))
    if report.stopped:
        # What finished is printed and written above; the status says it is partial.
        click.echo(f"stopped by {report.stopped}: {summary['attempts']} attempts finished")
        sys.exit(128 + int(signal.Signals[report.stopped]))


def _trace_file(path: str, cfg: Any) -> IO[str]:
    if cfg.eval.expert:
        raise ConfigError("--trace-labels: with --expert the expert acts; there is no other policy")
    try:
        # Line-buffered: a stopped evaluation keeps the lines of the cycles it ran.
        return open(path, "w", buffering=1)
    except OSError as e:
        raise ConfigError(f"--trace-labels: cannot write {path}: {e.strerror}") from None


def _labelled(out: IO[str], counts: Any) -> Callable[[Any], Any]:
    from grasprt.evaluation.label_trace import label_trace_factory
    from grasprt.runtime.runner import onnx_policy

    return label_trace_factory(out, onnx_policy, counts)


def _check_mount(cfg: Any) -> None:
    """A bad --mount is refused before the header, in one line, as run refuses it."""
    if not cfg.mount:
        return
    from grasprt.bundle import load_bundle
    from grasprt.calibration.mount import check_translation, load_mount
    from grasprt.profiles import get_profile

    mount = load_mount(cfg.mount, get_profile(load_bundle(cfg.bundle).robot))
    check_translation(mount, cfg.mount_max_offset_mm)


def _progress(quiet: bool) -> Callable[[Any, int, int], None]:
    live = not quiet and sys.stderr.isatty()

    def progress(res: Any, done: int, total: int) -> None:
        if quiet:
            return
        a = res.attempt
        line = (
            f"[{done}/{total}] x {a.x:.3f} y {a.y:+.3f}: "
            f"{'success' if res.success else 'fail (' + res.outcome + ')'} after {res.steps} steps"
            + (f" ({res.fault})" if res.fault else "")
        )
        click.echo(("\r\033[K" + line) if live else line, err=True, nl=not live or done == total)

    return progress
