"""`grasprt` as a user meets it: real subprocesses, real exit codes, real files.

Bad input: one line on stderr naming the problem, exit 2, no traceback, nothing
started. A fault: exit 3 with the arm held. A signal: hold, a finished record, 128+N.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bundle_factory import color_segmenter, nan_controller, ramp_controller, write_bundle

from grasprt.profiles import SAWYER
from grasprt.runtime.record_reader import read_record

REPO = Path(__file__).resolve().parents[2]


def grasprt(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grasprt.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture()
def nan_bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "nan", color_segmenter(), nan_controller(2))


@pytest.fixture()
def good_bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "good", color_segmenter(), ramp_controller(list(SAWYER.neutral)))


def test_help_teaches() -> None:
    proc = grasprt("--help")
    assert proc.returncode == 0
    for cmd in ("run", "check", "export", "devices", "calibrate-camera", "view"):
        assert cmd in proc.stdout
    run_help = grasprt("run", "--help")
    assert run_help.returncode == 0
    assert "Examples:" in run_help.stdout and "Exit status" in run_help.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--bogus"], "--bogus"),
        (["run", "--episodes", "zero"], "episodes"),
        (["run", "--episodes", "0"], "--episodes"),
        (["run", "--robot", "ur5"], "--robot"),
        (["run", "--bundle", "/nonexistent/bundle"], "/nonexistent/bundle"),
        (["run", "--robot", "sawyer"], "--camera"),
        (["run", "--clock", "sim", "--camera", "opencv:0"], "--clock sim"),
        (["run", "--fast"], "--fast is now --clock sim"),
        (["eval", "--realtime"], "--clock wall"),
        (["bench", "--max"], "--clock sim"),
        (["run", "--robot", "sawyer", "--camera", "opencv:0", "--gap", "large"], "--gap"),
        (["run", "--gt-mask", "--robot", "sawyer", "--camera", "opencv:0"], "--gt-mask"),
        (["eval", "--robot", "sawyer"], "--robot"),
        (["run", "--config", "/nonexistent.toml"], "/nonexistent.toml"),
        (["run", "--provider", "cuda", "--clock", "sim", "--max-steps", "1"], "cuda"),
        (["check", "/nonexistent/bundle"], "/nonexistent/bundle"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    proc = grasprt(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in one_line_error(proc)


def test_bad_config_file_names_the_setting(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text("[limiter]\nvelocity_factr = 0.3\n")
    proc = grasprt("run", "--config", str(cfg), "--clock", "sim")
    assert proc.returncode == 2
    assert "velocity_factr" in one_line_error(proc)


def test_tampered_bundle_is_refused_before_anything_starts(
    good_bundle: Path, tmp_path: Path
) -> None:
    (good_bundle / "controller.onnx").write_bytes(
        (good_bundle / "controller.onnx").read_bytes() + b"\0"
    )
    rec = tmp_path / "never.mcap"
    proc = grasprt("run", "--bundle", str(good_bundle), "--clock", "sim", "--record", str(rec))
    assert proc.returncode == 2
    assert "sha256" in one_line_error(proc)
    assert not rec.exists()  # refused before the record (and the drivers) started


def test_unwritable_record_is_refused(good_bundle: Path) -> None:
    proc = grasprt(
        "run", "--bundle", str(good_bundle), "--clock", "sim", "--record", "/nonexistent/x.mcap"
    )
    assert proc.returncode == 2
    assert "/nonexistent/x.mcap" in one_line_error(proc)


def test_existing_record_is_never_overwritten(good_bundle: Path, tmp_path: Path) -> None:
    rec = tmp_path / "keep.mcap"
    rec.write_bytes(b"an earlier flight")
    proc = grasprt("run", "--bundle", str(good_bundle), "--clock", "sim", "--record", str(rec))
    assert proc.returncode == 2
    one_line_error(proc)
    assert rec.read_bytes() == b"an earlier flight"


def test_run_json_has_the_documented_keys(good_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = grasprt(
        "run",
        "--bundle",
        str(good_bundle),
        "--clock",
        "sim",
        "--episodes",
        "2",
        "--max-steps",
        "15",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    s = json.loads(out.read_text())
    for key in (
        "episodes",
        "successes",
        "success_rate",
        "faults",
        "overruns",
        "cycle_ms",
        "limited_steps",
        "stages",
        "lateness_ms",
        "config",
    ):
        assert key in s
    assert set(s["cycle_ms"]) >= {"p50", "p99", "max"}
    assert s["episodes"] == 2 and s["faults"] == []
    assert s["config"]["max_steps"] == 15
    assert "cycle" in proc.stdout  # the human summary


def test_nan_controller_exits_3_with_a_readable_record(nan_bundle: Path, tmp_path: Path) -> None:
    out, rec = tmp_path / "run.json", tmp_path / "run.mcap"
    proc = grasprt(
        "run",
        "--bundle",
        str(nan_bundle),
        "--clock",
        "sim",
        "--episodes",
        "3",
        "--json",
        str(out),
        "--record",
        str(rec),
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    s = json.loads(out.read_text())
    assert s["episodes"] == 1  # the run stopped at the first fault
    assert s["faults"][0]["episode"] == 0 and "non-finite" in s["faults"][0]["reason"]
    r = read_record(rec)
    assert r.complete
    assert [c["verdict"] for c in r.cycles] == ["stop"]
    assert r.cycles[0]["command"] is None  # nothing was commanded


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_holds_and_finishes_the_record(good_bundle: Path, tmp_path: Path, sig) -> None:
    out, rec = tmp_path / "run.json", tmp_path / "run.mcap"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grasprt.cli",
            "run",
            "--bundle",
            str(good_bundle),
            "--episodes",
            "50",
            "--max-steps",
            "10",
            "--json",
            str(out),
            "--record",
            str(rec),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stderr is not None
    # Real time, 10 Hz: wait until the first episode has finished, then signal.
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if line.startswith("episode 1/") or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    s = json.loads(out.read_text())
    assert s["stopped"] == sig.name
    assert s["faults"] == []
    r = read_record(rec)
    assert r.complete
    assert r.summary["stopped"] == sig.name
