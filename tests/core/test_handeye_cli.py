"""`grasprt calibrate-hand-eye` on the simulator, as a user runs it (real subprocesses,
the sim's clock), and `--mount` on `grasprt run`: the record holds the mount used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from grasprt.calibration.mount import rotation_angle_deg
from grasprt.kinematics import transform
from grasprt.runtime.record_reader import read_record

REPO = Path(__file__).resolve().parents[2]
XYZ, RPY = (0.004, -0.004, 0.005657), (0.0302, -0.0302, 0.0302)  # 8.0 mm, 3.0 degrees
WORLD = f"""[sim]
gap = "none"
camera_mount_error = {{xyz = {list(XYZ)}, rpy = {list(RPY)}}}
"""


def grasprt(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grasprt.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        input=stdin,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("handeye")
    (tmp / "world.toml").write_text(WORLD)
    out = tmp / "mount.yaml"
    proc = grasprt(
        "calibrate-hand-eye", "--robot", "sim", "--config", str(tmp / "world.toml"),
        "--poses", "8", "--out", str(out), "--plot", str(tmp / "he.png"),
    )  # fmt: skip
    return proc, out


def test_sim_mount_is_found_within_a_millimetre_and_a_fifth_of_a_degree(solved) -> None:
    proc, out = solved
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = yaml.safe_load(out.read_text())
    off = doc["offset"]
    truth = transform(XYZ, RPY)
    found = transform(off["xyz"], off["rpy"])
    err_mm = float(np.linalg.norm(found[:3, 3] - truth[:3, 3]) * 1000)
    err_deg = rotation_angle_deg(truth[:3, :3].T @ found[:3, :3])
    assert err_mm < 1.0 and err_deg < 0.2, (err_mm, err_deg)
    # The file's own check against the sim's truth says the same.
    assert doc["solve"]["sim_truth"]["error_mm"] == pytest.approx(err_mm, abs=1e-3)
    assert doc["solve"]["poses"] >= 6 and doc["solve"]["reprojection_rms_px"] < 0.5
    # OpenCV's ANDREFF is left out where its translation does not fit the motions.
    assert set(doc["solve"]["methods"]) >= {"TSAI", "PARK", "HORAUD"}
    assert all(m["deg"] < 0.3 for m in doc["solve"]["methods"].values())
    assert "methods against the refined mount" in proc.stdout
    assert (out.parent / "he.png").stat().st_size > 10_000


def test_run_with_the_mount_reports_it_and_records_it(solved, tmp_path: Path) -> None:
    _, mount = solved
    rec = tmp_path / "run.mcap"
    proc = grasprt(
        "run", "--robot", "sim", "--clock", "sim", "--max-steps", "3", "--mount", str(mount),
        "--mount-max-offset", "10", "--record", str(rec),
        "--config", str(REPO / "docs" / "mount_error.toml"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "rotation corrected in the model view" in proc.stderr
    assert "turned 3.0" in proc.stderr  # the model view's line
    run = read_record(rec).run
    assert run is not None and run["mount"]["offset"]["translation_mm"] == pytest.approx(8.0, abs=1)
    assert run["config"]["mount"] == str(mount)


def test_run_refuses_a_mount_shifted_beyond_the_limit(solved) -> None:
    _, mount = solved
    line = one_line_error(grasprt("run", "--robot", "sim", "--clock", "sim", "--mount", str(mount)))
    assert "mm (xyz" in line and "beyond the 5 mm" in line and "--mount-max-offset" in line


def test_run_refuses_a_malformed_mount(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("robot: sawyer\nparent: right_l5\nxyz: [1, 2]\nrpy: [0, 0, 0]\n")
    line = one_line_error(grasprt("run", "--clock", "sim", "--mount", str(bad)))
    assert "xyz must be a list of 3 numbers" in line
    # eval and bench read it the same way, before anything runs: one line too.
    line = one_line_error(grasprt("eval", "--grid", "1", "--repeats", "1", "--mount", str(bad)))
    assert line.endswith("calibrate-hand-eye writes")


def test_board_not_seen(tmp_path: Path) -> None:
    (tmp_path / "w.toml").write_text(WORLD + 'board = {spec = "charuco:7x5", xy = [0.1, 0.8]}\n')
    world, out = str(tmp_path / "w.toml"), str(tmp_path / "m.yaml")
    line = one_line_error(grasprt("calibrate-hand-eye", "--config", world, "--out", out))
    assert "board charuco:7x5 not seen from the start pose" in line


def test_too_few_poses_and_poses_too_alike(tmp_path: Path) -> None:
    (tmp_path / "w.toml").write_text(WORLD)
    world, out = str(tmp_path / "w.toml"), str(tmp_path / "m.yaml")
    args = ("calibrate-hand-eye", "--manual", "--config", world, "--out", out)
    # The sim's arm stays where it is in --manual (no one moves it): Enter twice, q.
    line = one_line_error(grasprt(*args, stdin="\n\nq\n"))
    assert "2 poses with the board detected, at least 5 needed" in line
    line = one_line_error(grasprt(*args, stdin="\n" * 6 + "q\n"))
    assert "poses too alike to solve" in line
    assert not (tmp_path / "m.yaml").exists()


def test_twin_config_with_a_bad_sim_section_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "w.toml").write_text('[sim]\ncamera_mount_error = {xyz = [0.1, 0.2]}\n')
    line = one_line_error(grasprt("twin", "--config", str(tmp_path / "w.toml")))
    assert "camera_mount_error.xyz (metres) must be 3 numbers" in line
    (tmp_path / "w.toml").write_text("[sim]\nmount = 1\n")
    line = one_line_error(grasprt("twin", "--config", str(tmp_path / "w.toml")))
    assert "[sim]" in line and "mount" in line
