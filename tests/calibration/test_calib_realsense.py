"""Factory intrinsics from real librealsense recordings (made with its software_device)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from grasprt.calibration.camera_info import load_camera_info
from grasprt.calibration.cli import calibrate_camera_cmd
from grasprt.calibration.intrinsics_source import load_intrinsics
from grasprt.calibration.realsense_intrinsics import (
    read_device_intrinsics,
    read_recording_intrinsics,
)
from grasprt.errors import ConfigError, DriverError

rs = pytest.importorskip("pyrealsense2")


def record(path: Path, model: object, coeffs: list[float], size=(640, 480)) -> Path:
    """A recording of a colour stream with the given factory intrinsics and 3 frames."""
    w, h = size
    dev = rs.software_device()
    dev.register_info(rs.camera_info.serial_number, "000111222333")
    sensor = dev.add_sensor("RGB Camera")
    intr = rs.intrinsics()
    intr.width, intr.height = w, h
    intr.fx, intr.fy, intr.ppx, intr.ppy = 0.95 * w, 0.951 * w, w / 2 + 1.7, h / 2 - 2.3
    intr.model = model
    intr.coeffs = coeffs
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.color, 0, 1
    stream.width, stream.height, stream.fps, stream.bpp = w, h, 30, 3
    stream.fmt, stream.intrinsics = rs.format.rgb8, intr
    profile = sensor.add_video_stream(stream)
    recorder = rs.recorder(str(path), dev)
    queue = rs.frame_queue(10)
    sensor.open(profile)
    sensor.start(queue)
    pixels = np.zeros((h, w, 3), np.uint8)
    for i in range(3):
        f = rs.software_video_frame()
        f.pixels, f.stride, f.bpp = pixels, w * 3, 3
        f.timestamp, f.frame_number = 1000.0 + 33.3 * i, i
        f.domain = rs.timestamp_domain.hardware_clock
        f.profile = profile.as_video_stream_profile()
        sensor.on_video_frame(f)
    sensor.stop()
    sensor.close()
    del recorder  # closes the file
    return path


def test_brown_conrady_recording_gives_the_factory_numbers(tmp_path: Path):
    coeffs = [0.11, -0.23, 0.0012, -0.0009, 0.05]
    path = record(tmp_path / "d435.db3", rs.distortion.brown_conrady, coeffs)
    intr = read_recording_intrinsics(path)
    assert (intr.width, intr.height) == (640, 480)
    # librealsense stores float32.
    assert intr.fx == pytest.approx(0.95 * 640, rel=1e-6)
    assert intr.cx == pytest.approx(321.7, abs=1e-4)
    assert intr.cy == pytest.approx(237.7, abs=1e-4)
    assert intr.dist == pytest.approx(coeffs, abs=1e-7)
    assert load_intrinsics(str(path)) == intr


def test_inverse_brown_conrady_is_fitted_to_librealsense_projection(tmp_path: Path):
    coeffs = [0.14, -0.45, 0.0015, 0.002, 0.4]
    path = record(tmp_path / "d455.db3", rs.distortion.inverse_brown_conrady, coeffs)
    intr = read_recording_intrinsics(path, 640, 480)
    assert len(intr.dist) == 5
    ctx = rs.context()
    device = ctx.load_device(str(path))
    sensor = device.query_sensors()[0]
    ri = sensor.get_stream_profiles()[0].as_video_stream_profile().get_intrinsics()
    gx, gy = np.meshgrid(np.linspace(-0.33, 0.33, 9), np.linspace(-0.25, 0.25, 7))
    points = np.column_stack([gx.ravel(), gy.ravel(), np.ones(gx.size)])
    theirs = np.array([rs.rs2_project_point_to_pixel(ri, list(p)) for p in points])
    ours, _ = cv2.projectPoints(
        points, np.zeros(3), np.zeros(3), intr.matrix(), np.array(intr.dist)
    )
    assert np.abs(ours.reshape(-1, 2) - theirs).max() < 0.05


def test_a_missing_stream_size_names_the_sizes_there_are(tmp_path: Path):
    path = record(tmp_path / "r.db3", rs.distortion.none, [0.0] * 5)
    assert read_recording_intrinsics(path).dist == ()
    with pytest.raises(DriverError, match=r"no 1280x720 colour stream \(has 640x480\)"):
        read_recording_intrinsics(path, 1280, 720)


def test_a_file_that_is_not_a_recording_is_refused(tmp_path: Path):
    fake = tmp_path / "notes.db3"
    fake.write_text("not a recording")
    with pytest.raises(DriverError, match="not a readable RealSense recording"):
        read_recording_intrinsics(fake)
    with pytest.raises(DriverError, match="no such recording"):
        read_recording_intrinsics(tmp_path / "absent.db3")
    with pytest.raises(ConfigError, match=r"expected FILE\.yaml"):
        load_intrinsics(str(tmp_path / "notes.txt"))


def test_no_connected_realsense_is_a_clear_driver_error():
    if len(rs.context().query_devices()) > 0:
        pytest.skip("a RealSense is connected to this machine")
    with pytest.raises(DriverError, match="no RealSense camera is connected"):
        read_device_intrinsics()
    with pytest.raises(DriverError, match="no RealSense camera is connected"):
        load_intrinsics("realsense:123456")


def test_calibrate_camera_factory_writes_the_recordings_intrinsics(tmp_path: Path):
    path = record(tmp_path / "rec.db3", rs.distortion.brown_conrady, [0.1, -0.2, 0, 0, 0.03])
    out = tmp_path / "rs.yaml"
    result = CliRunner().invoke(
        calibrate_camera_cmd, ["--factory", str(path), "--resolution", "640x480", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert load_camera_info(out) == read_recording_intrinsics(path)
    assert f"wrote {out}" in result.output
