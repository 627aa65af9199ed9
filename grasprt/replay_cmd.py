"""`grasprt replay`: a record through a bundle again, offline; bit-exact or how far off."""

from __future__ import annotations

from typing import Any

import click

from grasprt.errors import ConfigError
from grasprt.figures import save_figure
from grasprt.run_cmd import write_json


def _line(s: dict[str, Any]) -> str:
    own = " (the record's own bundle)" if s["same_bundle"] else ""
    return (
        f"replay {s['record']} through {s['bundle']}{own}: {s['decided']} decided "
        f"of {s['cycles']} cycles; exact: actions {s['actions_exact']}, masks "
        f"{s['masks_exact']}, commands {s['commands_exact']}; limiter verdict changes "
        f"{s['verdict_changes']}"
    )


def print_report(s: dict[str, Any]) -> None:
    click.echo(_line(s))
    a, c = s["action_diff"], s["command_diff_rad"]
    click.echo(f"action diff   max {a['max']:.6g}  p50 {a['p50']:.6g}  p99 {a['p99']:.6g}")
    click.echo(f"command diff  max {c['max']:.6g} rad  p50 {c['p50']:.6g}  p99 {c['p99']:.6g}")
    if s["mask_iou_mean"] is not None:
        click.echo(f"mask IoU      mean {s['mask_iou_mean']:.4f}  min {s['mask_iou_min']:.4f}")
    if not s["lossless_frames"]:
        click.echo("note: the record's frames are JPEG (lossy): not expected to be bit-exact")
    click.echo(f"bit-exact: {'yes' if s['bit_exact'] else 'no'}")


def write_plot(path: str, report: Any) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'grasprt[plot]'") from None
    d = report.decided
    x = [c.index for c in d]
    fig, ax = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    ax[0].plot(x, [c.action_diff for c in d], ".-")
    ax[0].set_ylabel("max |action diff|")
    ax[1].plot(x, [c.mask_iou if c.mask_iou is not None else float("nan") for c in d], ".-")
    ax[1].set_ylabel("mask IoU")
    ax[1].set_ylim(-0.05, 1.05)
    ax[2].step(x, [c.recorded_status for c in d], where="mid", label="recorded")
    ax[2].step(x, [c.replayed_status for c in d], where="mid", label="replayed")
    ax[2].set_ylabel("limiter status")
    ax[2].set_xlabel("cycle")
    ax[2].legend()
    fig.suptitle(f"replay of {report.record} through {report.bundle}")
    fig.tight_layout()
    save_figure(fig, str(path), dpi=100)


@click.command(
    "replay",
    epilog="""\b
Examples:
  grasprt run --robot sim --record run.mcap --record-frames 1 --record-frame-format png
  grasprt replay run.mcap                      the same bundle: bit-exact?
  grasprt replay run.mcap --bundle models/placeholder --json d.json --plot d.png

Exit status: 0 done (bit-exact, or another bundle's report), 1 the record's own
bundle did not replay bit-exact from lossless frames, 2 bad input (a record without
its frames...).""",
)
@click.argument("record", metavar="RECORD.mcap")
@click.option("--bundle", default=None, metavar="DIR", help="Bundle to replay through. "
              "[default: the record's own]")
@click.option("--json", "json_path", default=None, metavar="PATH",
              help="Write the report, cycle by cycle, as JSON.")
@click.option("--plot", default=None, metavar="PNG", help="Plot the divergence per cycle.")
def replay_cmd(record: str, bundle: str | None, json_path: str | None, plot: str | None) -> int:
    """Feed a record's frames and robot states through a bundle and the limiter, offline,
    and compare with what the record holds: masks, actions, commands, limiter verdicts.

    Needs every decided cycle's frame (`grasprt run --record-frames 1`); exact only with
    lossless frames (`--record-frame-format png`).
    """
    from grasprt.runtime.replay import Replayer

    report = Replayer(record, bundle).run()
    summary = report.summary()
    print_report(summary)
    if json_path:
        write_json(json_path, report.to_json())
    if plot:
        write_plot(plot, report)
    # JPEG frames cannot give the recorded views back: no verdict on exactness then.
    if report.same_bundle and report.lossless_frames and not report.bit_exact:
        click.echo("grasprt: replay through the record's own bundle is NOT bit-exact", err=True)
        return 1
    return 0
