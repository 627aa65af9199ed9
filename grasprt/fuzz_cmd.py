"""`grasprt fuzz-limiter`: the limiter against an independent oracle (runtime/limiter_fuzz.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from grasprt.errors import ConfigError


@click.command(
    "fuzz-limiter",
    epilog="""\b
Examples:
  grasprt fuzz-limiter --count 1000000 --json fuzz.json
  grasprt fuzz-limiter --count 20000 --seed 7

Exit status 0 when no case broke a check, 1 when one did, 2 on bad input.""",
)
@click.option("--count", type=int, default=1_000_000, show_default=True, help="Cases to run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the cases.")
@click.option(
    "--batch", type=int, default=20_000, show_default=True, help="Cases per oracle batch."
)
@click.option("--json", "json_path", default=None, metavar="PATH", help="Write the results.")
@click.option("--quiet", "-q", is_flag=True, help="No progress.")
def fuzz_cmd(count: int, seed: int, batch: int, json_path: str | None, quiet: bool) -> int:
    """Random and adversarial requests (huge, tiny, non-finite, joints at and beyond
    their bounds, states far from the last command) through the limiter, each target
    judged by an oracle that shares no code with it: step bound, tracking bound, joint
    range with margin, the floor by a second forward kinematics, the gripper's rules."""
    from grasprt.run_cmd import write_json
    from grasprt.runtime.limiter_fuzz import fuzz

    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}")
    if json_path is not None and not Path(json_path).resolve().parent.is_dir():
        raise ConfigError(f"--json {json_path}: its folder does not exist")

    def progress(done: int, total: int) -> None:
        if not quiet:
            click.echo(f"{done}/{total} cases", err=True)

    r = fuzz(count, seed=seed, batch=batch, on_progress=progress)
    if not quiet:
        print_result(r)
    if json_path:
        write_json(json_path, r)
    return 0 if r["violations"] == 0 else 1


def print_result(r: dict[str, Any]) -> None:
    click.echo(
        f"{r['count']} cases (seed {r['seed']}) in {r['wall_s']:.1f} s "
        f"({r['cases_per_s']:.0f} cases/s): {r['violations']} violations"
    )
    click.echo("  by check: " + ", ".join(f"{k} {v}" for k, v in r["by_check"].items()))
    click.echo("  rules fired: " + ", ".join(f"{k} {v}" for k, v in r["rules_fired"].items()))
    for ex in r["examples"]:
        click.echo(f"  broke {ex['check']}: case {ex['case']}", err=True)
    sys.stdout.flush()
