"""`grasprt eval`: the grid protocol, its report, and the command line."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grasprt.cli import cli
from grasprt.drivers.sim.config import SceneConfig
from grasprt.errors import ConfigError
from grasprt.evaluation.evaluate import (
    Attempt,
    eval_config,
    evaluate,
    expert_policy,
    grid_positions,
    grid_shape,
    protocol_attempts,
    run_attempts,
)

PLACEHOLDER = str(Path(__file__).resolve().parents[2] / "models" / "placeholder")
# A floor plane 25 cm above the table: the arm starts 30-40 cm up with the fingertips
# lower still, so a limiter that knows this floor can never bring them to the sphere.
HIGH_FLOOR_TOML = "[limiter]\nfloor_z = 0.19\n"
WORKSPACE = SceneConfig().workspace


def test_grid_is_regular_inside_the_workspace() -> None:
    assert grid_shape(50, WORKSPACE) == (10, 5)
    assert grid_shape(7, WORKSPACE) == (7, 1)
    pts = grid_positions(50, WORKSPACE)
    assert len(pts) == len(set(pts)) == 50
    x0, x1, y0, y1 = WORKSPACE
    assert all(x0 < x < x1 and y0 < y < y1 for x, y in pts)
    xs = sorted({round(x, 9) for x, _ in pts})
    steps = {round(b - a, 9) for a, b in itertools.pairwise(xs)}
    assert len(steps) == 1  # evenly spaced


def test_repeats_differ_by_seed_only() -> None:
    cfg = eval_config(PLACEHOLDER, grid=4, repeats=3)
    attempts = protocol_attempts(cfg, WORKSPACE)
    assert len(attempts) == 12
    assert len({a.seed for a in attempts}) == 12
    assert len({(a.x, a.y) for a in attempts}) == 4


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"grid": 0}, "[eval] grid"),
        ({"repeats": 0}, "[eval] repeats"),
        ({"max_steps": 0}, "--max-steps"),
        ({"gap": "huge"}, "gap"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_bad_settings_are_refused(bad: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        eval_config(PLACEHOLDER, **bad)


def test_expert_eval_succeeds_and_reports_per_position() -> None:
    report = evaluate(eval_config(PLACEHOLDER, grid=2, repeats=1, max_steps=80, expert=True))
    s = report.summary()
    assert s["attempts"] == 2 and s["successes"] == 2 and s["success_rate"] == 1.0
    assert s["outcomes"]["success"] == 2 and sum(s["outcomes"].values()) == 2
    assert s["detection_disagreements"] == 0
    assert 0 < s["mean_steps"] < 80
    assert [p["attempts"] for p in s["per_position"]] == [1, 1]
    # Each attempt's row carries the trace behind its outcome: lifted while held
    # (success needs 5 cm), never lost.
    for row in s["per_attempt"]:
        assert row["max_lift_held_m"] >= 0.05 and row["releases"] == row["slips"] == 0


def test_network_eval_runs_the_onnx_pipeline_on_rendered_frames() -> None:
    # The placeholder's random controller does not grasp; what matters is that every
    # attempt ran its steps through the segmenter and the limiter without a fault.
    s = evaluate(eval_config(PLACEHOLDER, grid=1, repeats=2, max_steps=6)).summary()
    assert s["attempts"] == 2 and s["faults"] == []
    assert s["successes"] == 0 and s["mean_steps"] == 6
    # Each failure is named from the simulator's truth; none is a success or a fault.
    assert sum(s["outcomes"].values()) == 2
    assert s["outcomes"]["success"] == s["outcomes"]["fault"] == 0


def test_cli_writes_json_and_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "eval.json", tmp_path / "map.png"
    res = CliRunner().invoke(
        cli,
        [
            "eval", "--robot", "sim", "--bundle", PLACEHOLDER, "--expert", "--grid", "2",
            "--repeats", "1", "--max-steps", "80", "--gt-mask", "--json", str(out),
            "--plot", str(png), "--quiet",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    for key in ("attempts", "successes", "success_rate", "mean_steps", "per_position"):
        assert key in data
    assert data["successes"] == 2
    assert set(data["per_position"][0]) == {"x", "y", "successes", "attempts"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2/2" in res.output


def test_cli_names_each_failure_in_progress_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    res = subprocess.run(
        [
            sys.executable, "-m", "grasprt.cli", "eval", "--bundle", PLACEHOLDER, "--grid", "1",
            "--repeats", "2", "--max-steps", "6", "--json", str(out),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    outcomes = json.loads(out.read_text())["outcomes"]
    named = {k: n for k, n in outcomes.items() if n}
    assert sum(named.values()) == 2 and "success" not in named
    # Each progress line says how its attempt failed; the summary counts them.
    fails = [ln for ln in res.stderr.splitlines() if ": fail (" in ln]
    assert len(fails) == 2 and all(any(f"({k})" in ln for k in named) for ln in fails)
    summary = [ln for ln in res.stdout.splitlines() if ln.startswith("failures: ")]
    assert summary == ["failures: " + ", ".join(f"{k} {n}" for k, n in named.items())]
    per = json.loads(out.read_text())["per_attempt"]
    assert [p["steps"] for p in per] == [6, 6] and len({p["seed"] for p in per}) == 2
    counted = sorted(k for k, n in named.items() for _ in range(n))
    assert sorted(p["outcome"] for p in per) == counted


@pytest.mark.parametrize(
    "args, words",
    [
        (["--grid", "0"], "[eval] grid must be >= 1"),
        (["--bundle", "/no/such/bundle"], "no such bundle"),
        (
            ["--json", "/no/such/dir/x.json", "--grid", "1", "--repeats", "1", "--max-steps", "1"],
            "--json",
        ),
        (["--trace-labels", "/no/such/dir/t.jsonl", "--grid", "1"], "--trace-labels: cannot"),
        (["--trace-labels", "/dev/null", "--expert"], "--trace-labels: with --expert"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str], words: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "eval", "--quiet", "--bundle", PLACEHOLDER, *args],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in res.stderr


def test_eval_side_never_imports_torch() -> None:
    code = (
        "import sys, grasprt.eval_cmd, grasprt.evaluation.evaluate, grasprt.drivers.sim.expert,"
        " grasprt.evaluation.label_trace;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_signal_stops_the_whole_evaluation_not_just_one_attempt(tmp_path: Path) -> None:
    # The run's handler ends the attempt in progress; the evaluation must end with it
    # (it once went on to the next attempt, so Ctrl-C never stopped an eval or a DAgger
    # build), keep what finished, and say it is partial in its exit status.
    import signal

    out = tmp_path / "eval.json"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "grasprt.cli", "eval", "--bundle", PLACEHOLDER,
            "--grid", "20", "--repeats", "3", "--max-steps", "60", "--json", str(out),
        ],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("[2/"):
            break
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "stopped by SIGTERM" in stdout
    s = json.loads(out.read_text())
    assert s["stopped"] == "SIGTERM"
    assert 2 <= s["attempts"] < 60


def test_a_config_files_floor_reaches_the_limiter_and_the_expert(tmp_path: Path) -> None:
    # `grasprt eval --config` once built its settings by hand and never saw the file.
    toml = tmp_path / "floor.toml"
    toml.write_text(HIGH_FLOOR_TOML)
    base = ["eval", "--bundle", PLACEHOLDER, "--expert", "--grid", "1", "--repeats", "1",
            "--max-steps", "80", "--quiet"]  # fmt: skip
    free = CliRunner().invoke(cli, [*base, "--json", str(tmp_path / "free.json")])
    held = CliRunner().invoke(
        cli, [*base, "--config", str(toml), "--json", str(tmp_path / "held.json")]
    )
    assert free.exit_code == held.exit_code == 0, (free.output, held.output)
    free_s = json.loads((tmp_path / "free.json").read_text())
    held_s = json.loads((tmp_path / "held.json").read_text())
    assert free_s["successes"] == 1 and held_s["successes"] == 0
    assert held_s["settings"]["floor_z"] == 0.19 and free_s["settings"]["floor_z"] is None


def test_the_limiter_of_every_attempt_has_the_configured_floor() -> None:
    from grasprt.config import build_run_config
    from grasprt.drivers.registry import robot_settings_types

    seen: list[float | None] = []

    def watching(run):
        seen.append(run.limiter.config.floor)
        return expert_policy(run)

    flags = {"bundle": PLACEHOLDER, "limiter.floor_z": 0.19, "max_steps": 3}
    cfg = build_run_config(None, flags, robots=robot_settings_types(), defaults={"clock": "sim"})
    run_attempts(cfg, [Attempt(0.6, 0.0, 1), Attempt(0.5, 0.1, 2)], policy=watching)
    assert seen == [pytest.approx(0.19 + cfg.limiter.floor_clearance)] * 2
