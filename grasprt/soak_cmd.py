"""`grasprt soak`: the real loop for N cycles, watched for what grows (runtime/soak.py)."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from typing import Any

import click

from grasprt.errors import ConfigError
from grasprt.figures import save_figure
from grasprt.options import config_option, load_config, robot_options, timing_options


def print_report(r: dict[str, Any]) -> None:
    m = r["memory"]
    slope = m["slope_mb_per_1e4_cycles"]
    click.echo(
        f"{r['cycles']} cycles on the {r['clock']} clock in {r['wall_s']:.1f} s "
        f"({r['cycles_per_s']:.1f} cycles/s), {r['episodes']} episodes; overruns "
        f"{r['overruns']}, faults {len(r['faults'])}, holds {r['holds']}, dropped records "
        f"{r['dropped_records']}"
    )
    click.echo(
        f"resident memory: {m['start_mb']:.1f} MB at start, {m['after_warmup_mb']:.1f} after "
        f"warm-up ({m['warmup_cycles']} cycles), {m['end_mb']:.1f} at the end; slope "
        + ("n/a" if slope is None else f"{slope:+.3f} MB per 10^4 cycles")
        + f" (target < {r['targets']['rss_slope_mb_per_1e4']['target'].split()[1]})"
    )
    fd, th = r["fds"], r["threads"]
    click.echo(
        f"file descriptors {fd['start']} -> {fd['end']} (max {fd['max']}); threads "
        f"{th['start']} -> {th['end']} (max {th['max']})"
    )
    rec = r["record"]
    click.echo(
        f"record: {rec['bytes'] / 1e6:.1f} MB, {rec['bytes_per_cycle']:.0f} B per cycle, "
        f"{rec['write_mb_per_s']:.2f} MB/s"
    )
    click.echo("  window     cycles  late p50   late p99   late max  cycle p50  cycle p99  late")
    for w in r["windows"]:
        la, cy = w["lateness_ms"], w["cycle_ms"]
        click.echo(
            f"  {w['first_cycle']:>8} {w['cycles']:>8} {la['p50']:>9.3f} {la['p99']:>10.3f} "
            f"{la['max']:>10.3f} {cy['p50']:>10.3f} {cy['p99']:>10.3f} {w['late_cycles']:>5}"
        )


def plot(r: dict[str, Any], path: str) -> None:
    """Memory, descriptors and threads, the record, and lateness per window over cycles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = r["samples"]
    cyc = [x["cycle"] for x in s]
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True, constrained_layout=True)
    axes[0].plot(cyc, [x["rss_mb"] for x in s])
    axes[0].axvline(r["memory"]["warmup_cycles"], color="k", ls=":", lw=0.8)
    axes[0].set_ylabel("resident MB")
    axes[1].plot(cyc, [x["fds"] for x in s], label="file descriptors")
    axes[1].plot(cyc, [x["threads"] for x in s], label="threads")
    axes[1].legend(fontsize=8)
    axes[2].plot(cyc, [x["record_bytes"] / 1e6 for x in s])
    axes[2].set_ylabel("record MB")
    mid = [w["first_cycle"] + w["cycles"] / 2 for w in r["windows"]]
    for k in ("p50", "p99", "max"):
        axes[3].plot(mid, [w["lateness_ms"][k] for w in r["windows"]], marker=".", label=k)
    axes[3].set_ylabel("wake lateness ms")
    axes[3].set_xlabel("cycle")
    axes[3].legend(fontsize=8)
    fig.suptitle(f"grasprt soak: {r['cycles']} cycles, {r['clock']} clock")
    save_figure(fig, str(path), dpi=100)


@click.command(
    "soak",
    epilog="""\b
Examples:
  grasprt soak --cycles 100000 --clock sim --json soak.json --plot soak.png
  grasprt soak --cycles 36000 --clock wall      an hour at 10 Hz in real time

A benchmark: it reports, nothing is judged. Exit status 0, 2 on bad input,
128+N stopped by signal N (the figures so far are still written).""",
)
@robot_options(simulated_only=True)
@click.option("--cycles", type=int, required=True, help="Loop cycles to run.")
@click.option("--windows", type=int, default=20, show_default=True, help="Time windows.")
@click.option(
    "--record",
    "record_path",
    default=None,
    metavar="FILE.mcap",
    help="Keep the run's record here. [default: a temporary file, deleted]",
)
@click.option("--no-recording", is_flag=True, help="Soak without a record.")
@timing_options(clock_default="sim")
@config_option()
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the results.")
@click.option("--plot", "plot_path", default=None, metavar="PNG", help="Plot them over time.")
@click.option("--quiet", "-q", is_flag=True, help="No progress, no table.")
def soak_cmd(
    cycles: int,
    windows: int,
    record_path: str | None,
    no_recording: bool,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
    **params: Any,
) -> int:
    """Run the real loop for N cycles in one run and report resident memory (its slope
    after warm-up), file descriptors, threads, the record's size and write rate,
    overruns and lateness percentiles window by window."""
    from grasprt.bench_cmd import _Bar
    from grasprt.drivers.registry import build_drivers, check_drivers
    from grasprt.drivers.sim.views import held_out_views
    from grasprt.run_cmd import write_json
    from grasprt.runtime.bench import BenchParts
    from grasprt.runtime.soak import run_soak

    if cycles < 1:
        raise ConfigError(f"--cycles must be at least 1, got {cycles}")
    if windows < 1:
        raise ConfigError(f"--windows must be at least 1, got {windows}")
    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("--plot needs matplotlib (pip install 'grasprt[plot]')") from None
    for flag, path in (("--json", json_path), ("--plot", plot_path), ("--record", record_path)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise ConfigError(f"{flag} {path}: its folder does not exist")
    cfg = load_config(params, defaults={"clock": "sim"})
    parts = BenchParts(make_drivers=build_drivers, check=check_drivers, views=held_out_views)
    bar = _Bar(quiet)
    with tempfile.TemporaryDirectory(prefix="grasprt-soak-") as tmp:
        record = None
        if not no_recording:
            record = Path(record_path) if record_path else Path(tmp) / "soak.mcap"
        result = run_soak(
            cfg,
            parts,
            cycles,
            record=record,
            windows=windows,
            on_progress=lambda n: bar(n, cycles),
        )
    if plot_path:
        plot(result, plot_path)
        result["plot"] = plot_path
    if not quiet:
        print_report(result)
    if json_path:
        write_json(json_path, result)
    if result["stopped"]:
        # As `grasprt run`: a signal ends it early, its figures so far are reported.
        click.echo(f"stopped by {result['stopped']} after {result['cycles']} cycles", err=True)
        return 128 + int(signal.Signals[result["stopped"]])
    return 0
