"""`grasprt soak` as a user runs it: a real subprocess, a short soak on the sim's clock.
The figures are a benchmark's; what is checked is that they are there and add up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_factory import color_segmenter, ramp_controller, write_bundle

from grasprt.profiles import SAWYER

REPO = Path(__file__).resolve().parents[2]


def soak(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "soak", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "b", color_segmenter(), ramp_controller(list(SAWYER.neutral)))


def test_a_short_soak_reports_every_figure(bundle: Path, tmp_path: Path) -> None:
    out, png, rec = tmp_path / "soak.json", tmp_path / "soak.png", tmp_path / "soak.mcap"
    proc = soak(
        "--bundle", str(bundle), "--cycles", "120", "--windows", "4", "--max-steps", "50",
        "--json", str(out), "--plot", str(png), "--record", str(rec),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["cycles"] == 120 and r["clock"] == "sim" and r["stopped"] is None
    # 120 cycles of 50-step episodes: three episodes, the last cut at 120.
    assert r["episodes"] == 3 and not r["faults"]
    assert r["overruns"] == 0  # the sim clock never runs late
    assert [w["cycles"] for w in r["windows"]] == [30, 30, 30, 30]
    assert sum(w["first_cycle"] == 30 * i for i, w in enumerate(r["windows"])) == 4
    samples = r["samples"]
    assert samples[0]["cycle"] == 1 and samples[-1]["cycle"] == 120
    assert all(s["rss_mb"] > 0 and s["threads"] >= 1 and s["fds"] >= 3 for s in samples)
    m = r["memory"]
    assert m["slope_mb_per_1e4_cycles"] is not None
    assert m["peak_mb"] >= m["end_mb"] > 0
    # The record was kept where asked, and its size is the one reported.
    assert rec.stat().st_size == r["record"]["bytes"] > 0
    assert r["record"]["bytes_per_cycle"] == pytest.approx(rec.stat().st_size / 120)
    assert png.stat().st_size > 0
    assert "resident memory" in proc.stdout and "MB per 10^4 cycles" in proc.stdout


def test_soak_without_a_record(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = soak(
        "--bundle", str(bundle), "--cycles", "20", "--no-recording", "-q", "--json", str(out)
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["record"]["bytes"] == 0 and r["cycles"] == 20


def test_a_signal_ends_the_soak_with_its_figures(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "grasprt.cli", "soak", "--bundle", str(bundle),
         "--cycles", "1000000", "--json", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stderr is not None
    # The progress line at 1% (10^4 cycles) would take long; the first line comes at 1.
    proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    r = json.loads(out.read_text())
    assert r["stopped"] == "SIGINT" and 0 < r["cycles"] < 1_000_000


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cycles", "0"], "--cycles must be at least 1"),
        (["--cycles", "10", "--json", "/no/such/dir/x.json"], "its folder does not exist"),
        (["--cycles", "10", "--windows", "0"], "--windows must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    proc = soak(*args)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in proc.stderr
