"""`grasprt faults`: the fault campaign, each fault injected into a real `grasprt run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from grasprt.errors import ConfigError


@click.command(
    "faults",
    epilog="""\b
Examples:
  grasprt faults --list
  grasprt faults --robot sim --json faults.json
  grasprt faults --only sigterm --only camera_stall --keep out/faults

Each fault runs `grasprt run` in its own process on the wall clock (about 5-10 s
each), with a record and --json, and injects the fault from outside. Exit status: 0
every row as it must be, 1 a row failed, 2 bad input.""",
)
@click.option(
    "--robot",
    type=click.Choice(["sim", "sawyer"]),
    default="sim",
    show_default=True,
    help="sim: the simulated Sawyer; sawyer: the Sawyer twin over a roscore the "
    "campaign starts (needs grasprt's ROS environment).",
)
@click.option("--only", multiple=True, metavar="NAME", help="Run only this fault (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="List the faults and exit.")
@click.option("--bundle", default=None, metavar="DIR", help="Model bundle for the runs.")
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the rows as JSON.")
@click.option(
    "--keep",
    default=None,
    metavar="DIR",
    help="Keep each run's record, summary, logs in DIR/<fault>/ (default: a temp dir).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def faults_cmd(
    robot: str,
    only: tuple[str, ...],
    list_only: bool,
    bundle: str | None,
    json_path: str | None,
    keep: str | None,
    quiet: bool,
) -> int:
    """Inject every way a run breaks into a real `grasprt run` and report a table:
    time from injection to the arm holding, commands after it, exit status, whether
    the record reads back and what it lost."""
    from grasprt.evaluation.faults.campaign import pick, report, run_campaign, table

    faults = pick(only, robot)
    if list_only:
        for f in faults:
            click.echo(f"{f.name:<20} {f.family:<8} {f.summary}")
        return 0
    workdir = _workdir(keep)
    base = ("--episodes", "20", "--seed", "0") + (("--bundle", bundle) if bundle else ())
    echo = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    rows = run_campaign(faults, robot=robot, base_args=base, workdir=workdir, progress=echo)
    click.echo(table(rows))
    data = report(rows, robot)
    if json_path:
        _write(json_path, data)
    return 0 if data["passed"] == data["faults"] else 1


def _workdir(keep: str | None) -> Path | None:
    if keep is None:
        return None
    d = Path(keep)
    if d.exists() and any(d.iterdir()):
        raise ConfigError(f"--keep {keep}: not empty (each fault writes its own folder)")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write(path: str, data: dict[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")
    except OSError as e:
        raise ConfigError(f"--json {path}: cannot write ({e.strerror})") from None
