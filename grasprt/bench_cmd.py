"""`grasprt bench`: where the milliseconds of a cycle go, and how bad the tail is."""

from __future__ import annotations

import sys
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
    if "tuning" in r:
        click.echo(f"tuning: {r['tuning']['reason']}")
    for name, t in r.get("targets", {}).items():
        mark = "ok  " if t["met"] else "MISS"
        click.echo(f"target {mark} {name}: {t['value']:.3f} ({t['target']})")
    for f in r.get("faults", []):
        click.echo(f"fault in episode {f['episode']}: {f['reason']}")


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
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise ConfigError(f"--plot {path}: cannot write ({e.strerror})") from None
    finally:
        plt.close(fig)


@click.command(
    "bench",
    epilog="""\b
Examples:
  grasprt bench                                 300 cycles at the bundle's rate
  grasprt bench --cycles 3000 --json b.json --plot b.png
  grasprt bench --clock sim --cycles 500 --compare torch --tune
  grasprt bench --cycles 600 --stress 2
  grasprt bench --config arm.toml               the settings the arm runs with

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
    if compare is not None:
        params["compare_torch"] = compare == "torch"
    cfg = load_config(params)

    def say(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    parts = BenchParts(
        make_drivers=build_drivers, check=check_drivers, views=held_out_views, eager=_eager_pair
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
