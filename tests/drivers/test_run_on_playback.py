"""`grasprt run --robot sim --camera realsense:FILE.db3`: the loop on played-back frames.

The recording is made the way librealsense makes one: simulated wrist-camera frames
pushed through a `software_device` into a `recorder`. Played back through the real
RealSense driver, they drive the loop open-loop (the arm simulated, the frames not).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import color_segmenter, ramp_controller, write_bundle

from grasprt.clock import SimClock
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.factory import make_sim
from grasprt.profiles import SAWYER
from grasprt.runtime.record_reader import read_record

rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 unusable (libusb-1.0-0 missing?)")

REPO = Path(__file__).resolve().parents[2]


def record_sim_frames(path: Path, frames: int) -> Path:
    clock = SimClock()
    _, _, camera = make_sim(SimConfig(), clock, seed=3)
    intr = camera.intrinsics
    device = rs.software_device()
    sensor = device.add_sensor("RGB Camera")
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.color, 0, 1
    stream.width, stream.height, stream.fps, stream.bpp = intr.width, intr.height, 30, 3
    stream.fmt = rs.format.rgb8
    ri = rs.intrinsics()
    ri.width, ri.height = intr.width, intr.height
    ri.fx, ri.fy, ri.ppx, ri.ppy = intr.fx, intr.fy, intr.cx, intr.cy
    ri.model, ri.coeffs = rs.distortion.brown_conrady, [0.0] * 5
    stream.intrinsics = ri
    profile = sensor.add_video_stream(stream).as_video_stream_profile()
    device.register_info(rs.camera_info.serial_number, "000000000001")
    recorder = rs.recorder(str(path), device)
    sink = rs.frame_queue(4)
    sensor.open(profile)
    sensor.start(sink)
    camera.connect()
    for i in range(frames):
        clock.advance(1 / 30)
        image = np.ascontiguousarray(camera.capture().image)
        f = rs.software_video_frame()
        f.pixels, f.bpp, f.stride = image, 3, intr.width * 3
        f.timestamp, f.frame_number, f.profile = 1000.0 + i * 1000 / 30, i, profile
        f.domain = rs.timestamp_domain.hardware_clock
        sensor.on_video_frame(f)
        while sink.poll_for_frame():
            pass
    camera.disconnect()
    sensor.stop()
    sensor.close()
    del recorder
    return path


def test_run_sim_arm_on_played_back_realsense_frames(tmp_path: Path) -> None:
    db3 = record_sim_frames(tmp_path / "wrist.db3", 30)
    bundle = write_bundle(tmp_path / "b", color_segmenter(), ramp_controller(list(SAWYER.neutral)))
    out, rec = tmp_path / "run.json", tmp_path / "run.mcap"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grasprt.cli",
            "run",
            "--robot",
            "sim",
            "--bundle",
            str(bundle),
            "--camera",
            f"realsense:{db3},loop",
            "--max-steps",
            "20",
            "--json",
            str(out),
            "--record",
            str(rec),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    s = json.loads(out.read_text())
    assert s["steps"] == 20 and s["faults"] == []
    r = read_record(rec)
    ok = [c for c in r.cycles if c["verdict"] == "ok"]
    assert len(ok) >= 15
    # The recorded frames show the sphere: the segmenter finds it on played-back frames.
    assert max(c["mask_area"] for c in ok) > 0
