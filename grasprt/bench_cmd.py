"""`grasprt bench`: where the milliseconds of a cycle go, and how bad the tail is."""

from __future__ import annotations

import sys
from typing import Any

import click

from grasprt.errors import ConfigError


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
    return f"  {name:<16}{cols}"


def print_table(r: dict[str, Any]) -> None:
    head = " ".join(f"{k:>9}" for k in ("p50", "p90", "p99", "p99.9", "max"))
    pace = "as fast as possible" if r["max_rate"] else f"at {r['rate_hz']:g} Hz"
    click.echo(
        f"{r['cycles']} cycles {pace}; provider {r['provider']}, {r['threads']} thread(s), "
        f"{r['precision']}, fused {'on' if r['fused'] else 'off'}; overruns {r['overruns']}"
    )
    click.echo(f"  {'ms':<16}{head}")
    for name, st in r["stages"].items():
        click.echo(_row(name, st))
    click.echo(_row("cycle", r["cycle_ms"]))
    click.echo(_row("wake lateness", r["lateness_ms"]))
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
  grasprt bench --max --cycles 500 --compare torch --tune
  grasprt bench --cycles 600 --stress 2

The JSON keys are described in docs/bench.md. Exit status 0, 2 on bad input.""",
)
@click.option("--bundle", default=None, metavar="DIR", help="Model bundle directory.")
@click.option(
    "--camera", default=None, metavar="SPEC", help="Camera spec (default: the sim camera)."
)
@click.option("--calibration", default=None, metavar="FILE.yaml", help="Camera intrinsics.")
@click.option("--cycles", type=int, default=300, show_default=True, help="Loop cycles to time.")
@click.option("--rate", "rate_hz", type=float, default=None, help="Loop rate in Hz [bundle's].")
@click.option(
    "--max", "max_rate", is_flag=True, help="No waiting: the simulator's clock, back to back."
)
@click.option(
    "--provider",
    type=click.Choice(["cpu", "cuda", "tensorrt", "openvino"]),
    default="cpu",
    show_default=True,
)
@click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op threads.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "int8", "fp16", "bf16"]),
    default="fp32",
    show_default=True,
    help="Segmenter precision (reduced ones pass the IoU gate first).",
)
@click.option(
    "--fused/--two-models",
    default=None,
    help="One fused graph per cycle, or the two sessions. [default: the runtime's]",
)
@click.option("--spin/--no-spin", default=None, help="ONNX Runtime worker spinning.")
@click.option(
    "--opt",
    "graph_optimization",
    type=click.Choice(["disable", "basic", "extended", "all"]),
    default=None,
)
@click.option(
    "--compare",
    type=click.Choice(["torch"]),
    default=None,
    help="Also time the same weights in PyTorch eager (needs the export extra).",
)
@click.option("--stress", type=int, default=0, help="Busy processes beside a second loop run.")
@click.option("--tune", is_flag=True, help="Measure ORT settings and precisions; run the fastest.")
@click.option(
    "--model-reps", type=int, default=60, show_default=True, help="Runs per model-only figure."
)
@click.option(
    "--realtime/--no-realtime",
    default=True,
    show_default=True,
    help="SCHED_FIFO, mlockall and affinity for the loop where permitted.",
)
@click.option("--record/--no-record", default=True, show_default=True, help="Record (to tmp).")
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the results.")
@click.option("--plot", "plot_path", default=None, metavar="PNG", help="Draw the distributions.")
@click.option("--quiet", "-q", is_flag=True, help="No progress, no table.")
def bench_cmd(
    bundle,
    camera,
    calibration,
    cycles,
    rate_hz,
    max_rate,
    provider,
    threads,
    precision,
    fused,
    spin,
    graph_optimization,
    compare,
    stress,
    tune,
    model_reps,
    realtime,
    record,
    json_path,
    plot_path,
    quiet,
) -> int:
    """Profile the real loop on the simulated arm: per-stage latency percentiles,
    wake-up lateness, overruns, model-only and PyTorch figures, FLOPs against the
    CPU's peak, and contention from busy neighbours."""
    from dataclasses import replace

    from grasprt.run_cmd import write_json
    from grasprt.runtime.bench import BenchSpec, json_ready, run_bench
    from grasprt.runtime.inference import InferenceConfig

    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("--plot needs matplotlib (pip install 'grasprt[plot]')") from None
    from pathlib import Path

    # Refused before minutes of measuring, not after.
    for flag, path in (("--json", json_path), ("--plot", plot_path)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise ConfigError(f"{flag} {path}: its folder does not exist")
    inf = InferenceConfig(provider=provider, precision=precision)
    changes: dict[str, Any] = {}
    if threads is not None:
        changes["intra_op_threads"] = threads
    if fused is not None:
        changes["fused"] = fused
    if spin is not None:
        changes["allow_spinning"] = spin
    if graph_optimization is not None:
        changes["graph_optimization"] = graph_optimization
    inf = replace(inf, **changes)
    spec = BenchSpec(
        bundle=bundle,
        camera=camera,
        calibration=calibration,
        cycles=cycles,
        rate_hz=rate_hz,
        max_rate=max_rate,
        inference=inf,
        compare_torch=compare == "torch",
        stress=stress,
        model_reps=model_reps,
        record=record,
        realtime=realtime,
        tune=tune,
    )

    def say(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    result = run_bench(spec, progress=say, on_cycle=_Bar(quiet))
    if plot_path:
        plot(result, plot_path)
        result["plot"] = plot_path
    out = json_ready(result)
    if not quiet:
        print_table(out)
    if json_path:
        write_json(json_path, out)
    return 0
