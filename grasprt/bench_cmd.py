"""`grasprt bench`: where the milliseconds of a cycle go, and how bad the tail is."""

from __future__ import annotations

import sys
from typing import Any

import click

from grasprt.errors import ConfigError
from grasprt.figures import save_figure
from grasprt.options import (
    config_option,
    inference_options,
    live_option,
    load_config,
    robot_options,
    timing_options,
)


class _Bar:
    """A progress bar on stderr when it is a terminal; a line every 10% when not."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total <= 0:
            return
        pct = min(100, 100 * done // total)
        if self.tty:
            if pct != self._last or done == total:
                filled = pct * 30 // 100
                bar = "#" * filled + "." * (30 - filled)
                end = "\n" if done >= total else ""
                click.echo(f"\r[{bar}] {done}/{total} cycles", err=True, nl=False)
                if end:
                    click.echo("", err=True)
        elif pct // 10 != self._last // 10:
            click.echo(f"{done}/{total} cycles", err=True)
        self._last = pct


def _row(name: str, d: dict[str, float]) -> str:
    cols = " ".join(f"{d.get(k, 0.0):9.3f}" for k in ("p50", "p90", "p99", "p999", "max"))
    return f"  {name:<21}{cols}"


def print_table(r: dict[str, Any]) -> None:
    head = " ".join(f"{k:>9}" for k in ("p50", "p90", "p99", "p99.9", "max"))
    pace = "on the simulator's clock" if r["max_rate"] else f"at {r['rate_hz']:g} Hz"
    click.echo(
        f"{r['cycles']} cycles {pace}; provider {r['provider']}, {r['threads']} thread(s), "
        f"{r['precision']}, fused {'on' if r['fused'] else 'off'}; overruns {r['overruns']}"
    )
    click.echo(f"  {'ms':<21}{head}")
    for name, st in r["stages"].items():
        click.echo(_row(name, st))
    click.echo(_row("cycle", r["cycle_ms"]))
    click.echo(_row("wake lateness", r["lateness_ms"]))
    click.echo(_row("photon->command", r["photon_to_command_ms"]))
    click.echo(_row("stage gap", r["stage_gap_ms"]))
    mo = r["models_only_ms"]
    parts = ", ".join(f"{k} {v:.3f}" for k, v in mo.items())
    click.echo(f"model-only ONNX p50 ms: {parts}")
    if "models_at_cadence_ms" in r:
        cad = r["models_at_cadence_ms"]
        cparts = ", ".join(f"{k} {v:.3f}" for k, v in cad.items() if k != "rate_hz")
        click.echo(f"  once a period at {cad['rate_hz']:g} Hz (idle between), p50 ms: {cparts}")
    if "torch_ms" in r:
        t, s = r["torch_ms"], r["speedup_vs_torch"]
        click.echo(
            f"PyTorch eager p50 ms: segmenter {t['segmenter']:.3f}, controller "
            f"{t['controller']:.3f}, sum {t['sum']:.3f}; ONNX Runtime is {s['segmenter']:.2f}x "
            f"/ {s['controller']:.2f}x / {s['sum']:.2f}x faster"
        )
    click.echo(
        f"work {r['gflops_per_cycle']:.3f} GFLOP per cycle; achieved {r['achieved_gflops']:.1f} "
        f"GFLOP/s (models alone), {r['achieved_gflops_loop']:.1f} (loop p50); peak "
        f"{r['peak_gflops']:.1f} ({r['fraction_of_peak']:.1%}): {r['peak']}"
    )
    click.echo(f"max sustainable rate ~{r['max_rate_hz']:.1f} Hz (1 / (cycle p99.9 + late p99.9))")
    for line in r["realtime"]["applied"]:
        click.echo(f"real-time: {line}")
    for line in r["realtime"]["notes"]:
        click.echo(f"real-time: {line}")
    if "stress" in r:
        s = r["stress"]
        click.echo(
            f"with {s['processes']} busy process(es): cycle p50 {s['cycle_ms']['p50']:.2f} "
            f"p99 {s['cycle_ms']['p99']:.2f} max {s['cycle_ms']['max']:.2f} ms, lateness p99 "
            f"{s['lateness_ms']['p99']:.3f} ms, overruns {s['overruns']}; cycle p99 "
            f"x{s['p99_ratio']:.2f} of unloaded"
        )
    _print_extras(r)
    if "tuning" in r:
        click.echo(f"tuning: {r['tuning']['reason']}")
    on = r.get("targets", {}).get("on", {})
    if on:
        click.echo(f"targets on {on['cpu']} ({', '.join(on['isa'])}), {on['cores']} cores:")
    for name, t in r.get("targets", {}).items():
        if name == "on":
            continue
        mark = "ok  " if t["met"] else "MISS"
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        cadence = t.get("over_models_at_cadence")
        beside = "" if cadence is None else f"; {cadence:.3f} over the models once a period"
        click.echo(f"target {mark} {name}: {value} ({t['target']}){beside}")
    for f in r.get("faults", []):
        click.echo(f"fault in episode {f['episode']}: {f['reason']}")


def _print_extras(r: dict[str, Any]) -> None:
    """The feed, the roofline, the placement and the GPU lines."""
    render = r.get("feed", {}).get("sim_render_ms")
    if render:
        click.echo(
            f"camera: {render['frames']} frames prerendered before timing, delivered by a "
            f"thread; the simulator's render cost (not in the loop) p50 {render['p50']:.2f} "
            f"p99 {render['p99']:.2f} ms per frame"
        )
    roof = r.get("roofline")
    if roof:
        bw = roof["bandwidth"]
        for part in ("segmenter", "models"):
            x = roof[part]
            b = x["bound_ms"]
            click.echo(
                f"roofline {part} ({roof['precision']}, {roof['cores']} cores): "
                f"{x['achieved_ms']:.3f} ms against a bound of {b['bound']:.3f} ms (compute "
                f"{b['compute']:.3f} at {x['peak_gflops']:.0f} GFLOP/s {x['peak_unit']}; memory "
                f"{b['memory']:.3f}, {x['bytes_per_run'] / 1e6:.1f} MB at {bw['dram_gbs']:.1f} "
                f"GB/s): {x['fraction_of_bound']:.1%} of the bound"
            )
            if "bound_from_cache" in b:
                click.echo(
                    f"  (were every tensor in L2, at {bw['cache_gbs']:.0f} GB/s: a bound of "
                    f"{b['bound_from_cache']:.3f} ms)"
                )
    if r.get("placement", {}).get("measured"):
        click.echo(f"placement: {r['placement']['reason']}")
    if "prewarm" in r:
        click.echo(f"pre-warm: {r['prewarm']['reason']}")
    for name, g in r.get("gpu", {}).get("configs", {}).items():
        if "error" in g:
            click.echo(f"gpu {name}: {g['error']}")
        else:
            click.echo(
                f"gpu {name}: segmenter {g['segmenter_ms']:.3f} controller "
                f"{g['controller_ms']:.3f} ms, x{g.get('speedup_vs_cpu', 0):.2f} vs cpu"
            )


def _closed_loop(cfg: Any, pipeline: Any, attempts: int) -> list[bool]:
    """Grasp success of ``pipeline`` on ``attempts`` simulated attempts (the evaluation
    protocol's grid, one repeat each, on the simulator's clock)."""
    from dataclasses import replace

    from grasprt.drivers.sim.config import SceneConfig
    from grasprt.evaluation.evaluate import protocol_attempts, run_attempts
    from grasprt.runtime.policy import OnnxPolicy

    ecfg = replace(
        cfg,
        clock="sim",
        sched="normal",
        camera=None,
        gt_mask=False,
        max_steps=None,
        eval=replace(cfg.eval, grid=attempts, repeats=1),
    )
    chosen = protocol_attempts(ecfg, SceneConfig().workspace)[:attempts]
    results = run_attempts(ecfg, chosen, policy=lambda run: OnnxPolicy(pipeline))
    return [r.success for r in results]


def _eager_pair(bundle: Any, threads: int) -> Any:
    # torch only here, through the export extra's module: the runtime never imports it.
    try:
        from grasprt.export.eager import EagerPair
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"--compare torch needs the export extra (pip install 'grasprt[export]'): {e}"
        ) from None
    return EagerPair(bundle, threads=threads)


def plot(result: dict[str, Any], path: str) -> None:
    """Per-stage latency distributions (box plots, log scale) above the cycle timeline:
    each cycle's time and wake-up lateness against the period, per loop run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = result["_runs"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    base = runs["unloaded"]
    names, data = [], []
    for i, name in enumerate(base.stages):
        col = base.stage_ms[:, i]
        col = col[np.isfinite(col)]
        if col.size:
            names.append(name)
            data.append(np.maximum(col, 1e-4))
    names.append("cycle")
    data.append(np.maximum(base.cycle_ms[np.isfinite(base.cycle_ms)], 1e-4))
    top.boxplot(data, whis=(1, 99), showfliers=True, flierprops={"markersize": 2})
    top.set_xticks(range(1, len(names) + 1), names, rotation=20)
    top.set_yscale("log")
    top.set_ylabel("ms (log)")
    top.set_title("per-stage time, unloaded (box: p25-p75, whiskers: p1-p99, dots beyond)")
    for label, run in runs.items():
        x = np.arange(run.cycle_ms.size)
        bottom.plot(x, run.cycle_ms, lw=0.7, label=f"cycle, {label}")
        bottom.plot(x, run.lateness_ms, lw=0.7, label=f"wake lateness, {label}")
    if not result["max_rate"]:
        bottom.axhline(base.period_s * 1e3, color="k", ls="--", lw=0.8, label="period")
    bottom.set_xlabel("cycle")
    bottom.set_ylabel("ms")
    bottom.set_yscale("symlog", linthresh=1.0)
    bottom.legend(fontsize=8, loc="upper right")
    bottom.set_title("cycle timeline")
    save_figure(fig, str(path), dpi=110)


@click.command(
    "bench",
    epilog="""\b
Examples:
  grasprt bench                                 300 cycles at the bundle's rate
  grasprt bench --cycles 3000 --json b.json --plot b.png
  grasprt bench --clock sim --cycles 500 --compare torch --tune
  grasprt bench --cycles 600 --stress 2
  grasprt bench --config arm.toml               the settings the arm runs with
  grasprt bench --tune --save arm-tuned.toml    tune once; run/bench/eval --config it
  grasprt bench --tune --compare torch --cycles 3000 --stress 2 --json b.json
                                                every issue-18 target figure (~9 min)

The JSON keys are described in docs/bench.md. Exit status 0, 2 on bad input.""",
)
@robot_options(simulated_only=True)
@click.option("--cycles", type=int, default=None, help="Loop cycles to time. [default: 300]")
@click.option("--rate", "rate_hz", type=float, default=None, help="Loop rate in Hz [bundle's].")
@inference_options(tuning=True)
@click.option(
    "--compare",
    type=click.Choice(["torch"]),
    default=None,
    help="Also time the same weights in PyTorch eager, interleaved A/B (needs torch).",
)
@click.option("--stress", type=int, default=None, help="Busy processes beside a second loop run.")
@click.option(
    "--tune", is_flag=True, default=None, help="Measure ORT settings and precisions; run the best."
)
@click.option("--model-reps", type=int, default=None, help="Runs per model-only figure. [60]")
@click.option(
    "--save",
    default=None,
    metavar="FILE.toml",
    help="With --tune: write the pick as an [inference] section for --config.",
)
@click.option(
    "--tune-attempts", type=int, default=None, help="Closed-loop check attempts of --tune. [25]"
)
@click.option(
    "--stress-cycles", type=int, default=None, help="Cycles of the --stress run. [min(cycles, 600)]"
)
@click.option(
    "--feed",
    type=click.Choice(["prerendered", "live"]),
    default=None,
    help="Sim camera: frames made before timing and delivered by a thread, or rendered "
    "in the loop. [default: prerendered]",
)
@click.option(
    "--sync/--free-run",
    "feed_sync",
    default=None,
    help="Prerendered frames phase-locked to the loop (a triggered camera), or free-running "
    "at the camera's rate. [default: sync]",
)
@click.option(
    "--gpu", is_flag=True, default=None, help="Also time CUDA and TensorRT (an NVIDIA GPU)."
)
@click.option(
    "--recording/--no-recording",
    default=None,
    help="Record the loop to a temporary MCAP, as `run --record` does. [default: on]",
)
@timing_options()
@live_option()
@config_option()
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the results.")
@click.option("--plot", "plot_path", default=None, metavar="PNG", help="Draw the distributions.")
@click.option("--quiet", "-q", is_flag=True, help="No progress, no table.")
def bench_cmd(
    compare: str | None,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
    **params: Any,
) -> int:
    """Profile the real loop on the simulated arm: per-stage latency percentiles,
    wake-up lateness, overruns, model-only and PyTorch figures, FLOPs against the
    CPU's peak, and contention from busy neighbours."""
    from pathlib import Path

    from grasprt.drivers.prerendered import PrerenderedFeed
    from grasprt.drivers.registry import build_drivers, check_drivers
    from grasprt.drivers.sim.views import held_out_views
    from grasprt.run_cmd import write_json
    from grasprt.runtime.bench import BenchParts, json_ready, run_bench

    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("--plot needs matplotlib (pip install 'grasprt[plot]')") from None
    # Refused before minutes of measuring, not after.
    for flag, path in (("--json", json_path), ("--plot", plot_path)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise ConfigError(f"{flag} {path}: its folder does not exist")
    if params.get("save") is not None:
        from grasprt.runtime.tuned import check_save_path

        check_save_path(params["save"])
    if compare is not None:
        params["compare_torch"] = compare == "torch"
    cfg = load_config(params)

    def say(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    feed = PrerenderedFeed(build_drivers)
    parts = BenchParts(
        make_drivers=feed,
        check=check_drivers,
        views=held_out_views,
        eager=_eager_pair,
        closed_loop=_closed_loop,
        render=feed.render_summary,
    )
    result = run_bench(cfg, parts, progress=say, on_cycle=_Bar(quiet))
    if plot_path:
        plot(result, plot_path)
        result["plot"] = plot_path
    out = json_ready(result)
    if not quiet:
        print_table(out)
    if json_path:
        write_json(json_path, out)
    return 0
