"""`grasprt calibrate-hand-eye --robot sawyer` over ROS, against `grasprt twin` with a
mis-mounted camera and a board on its table: the same command as on the simulator,
through the real Intera SDK, the camera's image topic and the wall clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ros_support import roscore, stop_group
from twin_support import start_twin

from grasprt.calibration.mount import rotation_angle_deg
from grasprt.kinematics import transform

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[3]
TWIN_TOML = REPO / "docs" / "twin.toml"
CAMERA = "ros:/io/internal_camera/right_hand_camera/image_raw"
# 8.0 mm and 3.0 degrees off the URDF's mount (docs/mount_error.toml). The twin's gap is
# "none": its encoders are exact, so what is measured is the mount alone.
WORLD = """[sim]
gap = "none"
camera_mount_error = {xyz = [0.004, -0.004, 0.005657], rpy = [0.0302, -0.0302, 0.0302]}
board = {spec = "charuco:7x5", square = 0.04, marker = 0.03}
"""


def test_hand_eye_over_ros_finds_the_twins_mount(tmp_path: Path) -> None:
    world = tmp_path / "world.toml"
    world.write_text(WORLD)
    out = tmp_path / "mount.yaml"
    with roscore(tmp_path) as master:
        args = ("--robot", "sawyer", "--config", str(world))
        twin = start_twin(master.env, tmp_path / "twin", *args)
        try:
            cmd = [sys.executable, "-m", "grasprt.cli", "calibrate-hand-eye", "--robot", "sawyer"]
            cmd += ["--camera", CAMERA, "--config", str(TWIN_TOML), "--yes", "--poses", "7"]
            cmd += ["--speed", "0.3", "--out", str(out)]
            proc = subprocess.run(
                cmd, env=master.env, capture_output=True, text=True, timeout=240
            )
        finally:
            stop_group(twin.process)
    assert proc.returncode == 0, proc.stderr + proc.stdout + twin.text()
    doc = yaml.safe_load(out.read_text())
    off = doc["offset"]
    # The truth is in the twin's world file only.
    truth = transform((0.004, -0.004, 0.005657), (0.0302, -0.0302, 0.0302))
    solved = transform(off["xyz"], off["rpy"])
    err_mm = float(np.linalg.norm(solved[:3, 3] - truth[:3, 3]) * 1000)
    err_deg = rotation_angle_deg(truth[:3, :3].T @ solved[:3, :3])
    print(f"twin: {doc['solve']['poses']} poses, {err_mm:.3f} mm and {err_deg:.4f} deg off")
    assert err_mm < 1.0 and err_deg < 0.2, (err_mm, err_deg, off)
    assert doc["solve"]["poses"] >= 6
