"""`grasprt faults --robot sawyer` for real: its own roscore, the Sawyer twin, the real
Intera SDK under `grasprt run --robot sawyer`. Run as a process of its own: rospy binds
a process to one master, and this test session's node is on another."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]


def test_after_sigkill_the_twin_holds_and_the_monitor_trips(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    proc = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "faults", "--robot", "sawyer", "--only",
         "sigkill", "--bundle", str(REPO / "models" / "reference"),
         "--json", str(out), "--quiet"],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert out.exists(), proc.stderr
    rows = {r["fault"]: r for r in json.loads(out.read_text())["rows"]}
    kill = rows["sigkill"]
    assert kill["exit"] == -9
    # Nobody is left to hold: the twin's own command timeout must, and nothing after.
    assert kill["twin_hold_ms"] is not None and kill["twin_commands_after_hold"] == 0
    assert kill["heartbeat"] == "tripped"
    assert kill["record_readable"]
    # Timing bounds are the table's business, not asserted here.
    untimed = {k: v for r in rows.values() for k, v in r["checks"].items() if "bound" not in k}
    assert all(untimed.values()), untimed
