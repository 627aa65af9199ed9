"""Run faults one after another, each in its own `grasprt run`, and tabulate them."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from grasprt.errors import ConfigError
from grasprt.evaluation.faults import Fault, Timing, all_faults
from grasprt.evaluation.faults.measure import Row, measure, wait_for_trip
from grasprt.evaluation.faults.trial import Trial


def pick(only: Iterable[str] = (), robot: str = "sim") -> list[Fault]:
    faults = all_faults()
    names = list(only)
    unknown = [n for n in names if n not in faults]
    if unknown:
        raise ConfigError(f"--only {', '.join(unknown)}: unknown fault; known: {', '.join(faults)}")
    chosen = [faults[n] for n in names] if names else list(faults.values())
    return [f for f in chosen if robot in f.robots]


def run_one(
    fault: Fault, workdir: Path, robot: str, base_args: tuple[str, ...], timing: Timing,
    side: Any = None,
) -> Row:  # fmt: skip
    trial = Trial(fault, workdir, robot=robot, base_args=base_args, side=side)
    try:
        if fault.before_start:
            trial.workdir.mkdir(parents=True, exist_ok=True)
            (trial.workdir / "record").mkdir(exist_ok=True)
            fault.inject(trial)
            trial.start()
        else:
            trial.start()
            if not trial.wait_ready(fault.warm_commands):
                trial.close()
                row = measure(trial, trial.proc.returncode if trial.proc else -1, timing)
                row.error = f"the run ended before the fault: {trial.stderr.strip()[-300:]}"
                return row
            fault.inject(trial)
        code = trial.finish()
        wait_for_trip(trial)
    finally:
        trial.close()
    return measure(trial, code, timing)


def run_campaign(
    faults: list[Fault],
    *,
    robot: str = "sim",
    base_args: tuple[str, ...] = (),
    workdir: Path | None = None,
    timing: Timing | None = None,
    progress: Callable[[str], None] = lambda s: None,
) -> list[Row]:
    timing = timing or Timing()
    rows = []
    with tempfile.TemporaryDirectory(prefix="grasprt-faults-") as tmp, ExitStack() as stack:
        root = workdir or Path(tmp)
        side = None
        if robot == "sawyer":
            from grasprt.evaluation.faults.sawyer import twin_session

            side = stack.enter_context(twin_session(root, progress))
        for f in faults:
            progress(f"fault {f.name}: {f.summary}")
            row = run_one(f, root / f.name, robot, base_args, timing, side)
            progress(f"  -> {'ok' if row.passed else 'FAILED'}: {row.reason or ''}")
            rows.append(row)
    return rows


def _record_state(r: Row) -> str:
    if not r.record_readable:
        return "none" if r.expect == "refuse" else "UNREADABLE"
    return "complete" if r.record_complete else "cut, read"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def table(rows: list[Row]) -> str:
    """The campaign as a Markdown table (it reads as text too)."""
    head = (
        "| fault | expect | exit | hold ms | bound ms | cmds after hold | "
        "record | lost | heartbeat | overruns | verdict | reason |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        if r.heartbeat == "tripped":
            hb = f"tripped {_ms(r.heartbeat_trip_ms)} ms"
        else:
            hb = r.heartbeat or "-"
        lost = "0"
        if r.record_lost_commands:
            lost = f"{r.record_lost_commands} cmd ({r.record_lost_s:.2f} s)"
        failed = [k for k, ok in r.checks.items() if not ok]
        verdict = "ok" if r.passed else "FAIL: " + ", ".join(failed or [r.error or "?"])
        reason = (r.reason or "").replace("|", "/")[:70]
        after = "-" if r.commands_after_hold is None else str(r.commands_after_hold)
        bound = f"{r.bound_ms:.0f}" if r.expect == "hold" else "-"
        record = _record_state(r)
        if r.notes.get("record_failure"):
            record += " (failed: reported)"
        lines.append(
            f"| {r.fault} | {r.expect} | {r.exit} | {_ms(r.hold_ms)} | {bound} | "
            f"{after} | {record} | {lost} | {hb} | {r.notes.get('overruns', '-')} | "
            f"{verdict} | {reason} |"
        )
    return "\n".join(lines)


def report(rows: list[Row], robot: str) -> dict[str, Any]:
    return {
        "robot": robot,
        "faults": len(rows),
        "passed": sum(r.passed for r in rows),
        "rows": [r.to_dict() for r in rows],
    }
