"""`--robot mujoco` from the command line: a real run, a real evaluation, and the one
line a machine without robosuite's model files gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.mujoco


def grasprt(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grasprt.cli", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )


def test_run_on_the_simulators_clock_records_a_summary(tmp_path: Path):
    out = tmp_path / "run.json"
    # The loop's heartbeat watchdog runs on the wall clock even on the simulator's: a
    # loaded test machine must not trip it (eval raises it the same way).
    config = tmp_path / "run.toml"
    config.write_text("[watchdog]\nheartbeat_s = 10.0\n")
    p = grasprt("run", "--robot", "mujoco", "--clock", "sim", "--max-steps", "20",
                "--config", str(config), "--json", str(out))
    assert p.returncode == 0, p.stderr
    summary = json.loads(out.read_text())
    assert summary["episodes"] == 1
    assert summary["config"]["robot"] == "mujoco"


def test_eval_runs_the_expert_by_contact_physics(tmp_path: Path):
    out = tmp_path / "eval.json"
    p = grasprt("eval", "--robot", "mujoco", "--expert", "--grid", "1", "--repeats", "1",
                "--json", str(out))
    assert p.returncode == 0, p.stderr
    result = json.loads(out.read_text())
    assert result["attempts"] == 1
    assert result["successes"] == 1  # the sphere held between both fingers, lifted 5 cm


def test_without_robosuites_model_files_one_line_says_what_to_install(tmp_path: Path):
    # A robosuite package without its assets shadows the real one: what a broken or
    # partial install looks like to find_spec.
    fake = tmp_path / "site" / "robosuite"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    p = grasprt("run", "--robot", "mujoco", "--clock", "sim", env=env)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "make mujoco" in lines[0], p.stderr
    assert "Traceback" not in p.stderr
