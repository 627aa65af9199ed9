"""`grasprt faults` for real: each fault injected into a real `grasprt run` process on
the wall clock (ONNX Runtime, the sim, the MCAP record, ptys), its row checked.

Timing bounds are in the table (the campaign's figures), never asserted here: only
what the arm was told, the exit status and the record are."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from grasprt.evaluation.faults import all_faults
from grasprt.evaluation.faults.campaign import pick, report, run_campaign, table

REPO = Path(__file__).resolve().parents[2]
BUNDLE = ("--bundle", str(REPO / "models" / "reference"), "--episodes", "20")
# What a loaded machine can stretch; these checks are in the table, not in the tests.
TIMED = {"hold in bound", "trip in bound", "lost <= flush interval"}


def untimed(checks: dict[str, bool]) -> dict[str, bool]:
    return {k: v for k, v in checks.items() if k not in TIMED}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict:
    faults = pick(["sigterm", "sigkill", "camera_stall", "nonfinite_output"])
    workdir = tmp_path_factory.mktemp("faults")
    got = run_campaign(faults, base_args=BUNDLE, workdir=workdir)
    return {r.fault: r for r in got}


def test_sigterm_holds_at_once_and_finishes_the_record(rows: dict) -> None:
    r = rows["sigterm"]
    assert r.exit == 143 and r.reason == "SIGTERM"
    assert r.hold_ms is not None and r.commands_after_hold == 0
    assert r.record_complete and r.record_lost_commands == 0
    # A clean stop tells the heartbeat monitor so: it disarms instead of tripping.
    assert r.heartbeat == "disarmed"
    assert all(untimed(r.checks).values()), r.checks


def test_sigkill_trips_the_heartbeat_monitor_and_leaves_a_readable_record(rows: dict) -> None:
    r = rows["sigkill"]
    assert r.exit == -9
    assert r.heartbeat == "tripped" and r.heartbeat_trip_ms is not None
    assert r.record_readable and not r.record_complete
    # The cut file keeps the run up to its last flushed chunk (how much it lost, in
    # seconds, is the table's figure).
    assert r.record_cycles > 0 and r.record_lost_commands < r.notes["commands"]
    assert all(untimed(r.checks).values()), r.checks


@pytest.mark.parametrize("name", ["camera_stall", "nonfinite_output"])
def test_a_fault_latches_and_nothing_is_commanded_after_the_hold(rows: dict, name: str) -> None:
    r = rows[name]
    assert r.exit == 3
    assert r.hold_ms is not None and r.commands_after_hold == 0
    assert r.commands_after_injection <= r.notes["commands"]
    assert r.record_complete
    assert all(untimed(r.checks).values()), r.checks


def test_nonfinite_output_is_named_in_the_summary(rows: dict) -> None:
    assert "non-finite" in rows["nonfinite_output"].reason


def test_the_table_and_json_carry_every_row(rows: dict) -> None:
    text = table(list(rows.values()))
    for name in rows:
        assert f"| {name} |" in text
    data = json.loads(json.dumps(report(list(rows.values()), "sim")))
    assert data["faults"] == 4
    assert {row["fault"] for row in data["rows"]} == set(rows)


def test_a_failed_check_shows_in_the_verdict(rows: dict) -> None:
    r = rows["sigterm"]
    r.checks["record complete"] = False
    try:
        assert not r.passed
        assert "FAIL: record complete" in table([r])
    finally:
        r.checks["record complete"] = True


def faults_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "faults", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_list_names_every_family() -> None:
    proc = faults_cli("--list")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == list(all_faults())
    assert {f.family for f in all_faults().values()} == {
        "signals", "camera", "model", "robot", "serial", "storage", "host"
    }  # fmt: skip


@pytest.mark.skipif(
    importlib.util.find_spec("rospy") is not None, reason="ROS is set up: this would run"
)
def test_sawyer_without_ros_is_one_line_and_exit_2() -> None:
    proc = faults_cli("--robot", "sawyer", "--only", "estop")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "ROS environment" in proc.stderr


def test_an_unknown_fault_is_one_line_and_exit_2() -> None:
    proc = faults_cli("--only", "meteor")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "meteor" in proc.stderr
    assert "Traceback" not in proc.stderr
