"""The RealSense driver, playing recordings that librealsense itself writes.

Each recording is made the way a camera's would be: a librealsense ``software_device``
with one colour sensor (chosen intrinsics), wrapped in ``rs.recorder``, fed frames with
known pixels and timestamps through ``on_video_frame``. Frame i carries i in its red
channel and was stamped ``T0_MS + i * PERIOD_MS``, so each frame played back says
which it is and whether its timestamp belongs to it.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from grasprt.calibration.camera_info import save_camera_info
from grasprt.drivers.capture_camera import CaptureSettings
from grasprt.drivers.realsense import (
    INSTALL_HINT,
    RealSenseCamera,
    capture_stamp,
    intrinsics_from_realsense,
)
from grasprt.errors import DriverError
from grasprt.types import Camera, Frame, Intrinsics

try:
    import pyrealsense2 as rs
except ImportError as e:  # e.g. libusb-1.0 missing: apt install libusb-1.0-0
    rs = None
    RS_MISSING = str(e)
else:
    RS_MISSING = ""

needs_rs = pytest.mark.skipif(rs is None, reason=f"pyrealsense2 unusable: {RS_MISSING}")

W, H = 160, 120
FX, FY, PPX, PPY = 154.2, 153.8, 80.5, 59.7
COEFFS = [0.12, -0.25, 0.001, -0.0015, 0.1]
T0_MS = 1000.0
PERIOD_MS = 100.0 / 3.0
SERIAL = "923322071234"


def rs_intrinsics(model: str, coeffs: Sequence[float], w: int = W, h: int = H) -> Any:
    intr = rs.intrinsics()
    intr.width, intr.height = w, h
    intr.fx, intr.fy, intr.ppx, intr.ppy = FX, FY, PPX, PPY
    intr.model = getattr(rs.distortion, model)
    intr.coeffs = list(coeffs)
    return intr


def write_recording(
    path: Path,
    frames: int,
    *,
    fmt: str = "bgr8",
    model: str = "inverse_brown_conrady",
    coeffs: Sequence[float] = COEFFS,
) -> Path:
    """Record ``frames`` colour frames from a software_device into ``path`` (.db3)."""
    device = rs.software_device()
    sensor = device.add_sensor("RGB Camera")
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.color, 0, 1
    stream.width, stream.height, stream.fps = W, H, 30
    stream.bpp = 3
    stream.fmt = getattr(rs.format, fmt)
    stream.intrinsics = rs_intrinsics(model, coeffs)
    profile = sensor.add_video_stream(stream).as_video_stream_profile()
    device.register_info(rs.camera_info.name, "Intel RealSense D435 (software)")
    device.register_info(rs.camera_info.serial_number, SERIAL)
    recorder = rs.recorder(str(path), device)
    sink = rs.frame_queue(4)
    sensor.open(profile)
    sensor.start(sink)
    for i in range(frames):
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[..., 0] = i
        rgb[..., 1] = 255 - i
        rgb[: H // 2, : W // 2, 2] = 200  # a corner that shows any flip or swap
        pixels = rgb if fmt == "rgb8" else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        frame = rs.software_video_frame()
        frame.pixels = np.ascontiguousarray(pixels)
        frame.bpp, frame.stride = 3, W * 3
        frame.timestamp = T0_MS + i * PERIOD_MS
        frame.domain = rs.timestamp_domain.hardware_clock
        frame.frame_number = i
        frame.profile = profile
        sensor.on_video_frame(frame)
        while sink.poll_for_frame():
            pass
    sensor.stop()
    sensor.close()
    del recorder  # closing the recorder writes the file out
    return path


def expected_image(i: int) -> np.ndarray:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = i
    rgb[..., 1] = 255 - i
    rgb[: H // 2, : W // 2, 2] = 200
    return rgb


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if rs is None:
        pytest.skip(f"pyrealsense2 unusable: {RS_MISSING}")
    return write_recording(tmp_path_factory.mktemp("rs") / "colour.db3", 40)


@pytest.fixture
def cameras() -> Iterator[list[RealSenseCamera]]:
    opened: list[RealSenseCamera] = []
    yield opened
    for cam in opened:
        cam.disconnect()


def play(opened: list[RealSenseCamera], path: Path, **kwargs: object) -> RealSenseCamera:
    settings = CaptureSettings(pace=False, **kwargs)  # type: ignore[arg-type]
    cam = RealSenseCamera(settings=settings, recording=path)
    opened.append(cam)
    cam.connect()
    return cam


def read_until_end(cam: RealSenseCamera) -> list[Frame]:
    seen: list[Frame] = []
    while True:
        frame = cam.wait_for_frame(seen[-1].seq if seen else -1, timeout_s=5.0)
        if frame is None:
            return seen
        seen.append(frame)


def recorded_index(frame: Frame) -> int:
    return int(frame.image[0, 0, 0])


@needs_rs
@pytest.mark.parametrize("fmt", ["bgr8", "rgb8"])
def test_playback_gives_each_frame_with_its_timestamp(tmp_path: Path, cameras: list, fmt: str):
    path = write_recording(tmp_path / f"{fmt}.db3", 25, fmt=fmt)
    cam = play(cameras, path)
    assert isinstance(cam, Camera)
    seen = read_until_end(cam)
    assert cam.stats.ended and cam.stats.errors == 0
    assert cam.stats.frames == 25  # every recorded frame reached the capture thread
    indices = [recorded_index(f) for f in seen]
    assert indices == sorted(set(indices)) and indices[-1] == 24
    for frame, i in zip(seen, indices, strict=True):
        np.testing.assert_array_equal(frame.image, expected_image(i))
        assert frame.device_stamp == pytest.approx((T0_MS + i * PERIOD_MS) / 1000.0, abs=1e-4)
    stamps = [f.device_stamp for f in seen]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert all(b.stamp >= a.stamp for a, b in itertools.pairwise(seen))
    assert cam.device_info["serial"] == SERIAL


@needs_rs
def test_playback_brings_the_factory_intrinsics(recording: Path, cameras: list) -> None:
    cam = play(cameras, recording)
    intr = cam.intrinsics
    assert intr is not None
    assert (intr.width, intr.height) == (W, H)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == pytest.approx((FX, FY, PPX, PPY), rel=1e-6)
    # OpenCV with these coefficients must project as librealsense does with its own.
    points = grid_points()
    ours, _ = cv2.projectPoints(
        points, np.zeros(3), np.zeros(3), intr.matrix(), np.array(intr.dist)
    )
    theirs = np.array(
        [
            rs.rs2_project_point_to_pixel(rs_intrinsics("inverse_brown_conrady", COEFFS), list(p))
            for p in points
        ]
    )
    assert np.abs(ours[:, 0, :] - theirs).max() < 0.05


@needs_rs
def test_a_held_frame_is_never_overwritten(recording: Path, cameras: list) -> None:
    cam = play(cameras, recording)
    first = cam.latest()
    assert first is not None
    kept = first.image.copy()
    read_until_end(cam)
    np.testing.assert_array_equal(first.image, kept)


@needs_rs
def test_settle_frames_are_dropped(recording: Path, cameras: list) -> None:
    cam = play(cameras, recording, settle_frames=6)
    seen = read_until_end(cam)
    assert recorded_index(seen[0]) >= 6
    assert cam.stats.frames == 40 - 6


@needs_rs
def test_loop_plays_the_recording_again(recording: Path, cameras: list) -> None:
    cam = play(cameras, recording, loop=True)
    seen = [cam.wait_for_frame()]
    while cam.stats.frames < 100:
        frame = cam.wait_for_frame(seen[-1].seq)
        assert frame is not None, "playback stopped instead of looping"
        seen.append(frame)
    indices = [recorded_index(f) for f in seen]
    assert sum(b < a for a, b in itertools.pairwise(indices)) >= 2
    assert not cam.stats.ended


@needs_rs
def test_pipeline_restart_counts_and_frames_resume(recording: Path, cameras: list) -> None:
    cam = play(cameras, recording, loop=True)
    assert cam.reconnects == 0
    cam.request_restart()
    before = cam.stats.frames
    # The capture thread restarts the pipeline and frames flow again.
    for _ in range(200):
        if cam.reconnects == 1 and cam.stats.frames > before + 20:
            break
        assert cam.wait_for_frames(cam.stats.frames + 1)
    assert cam.reconnects == 1
    assert cam.stats.frames > before + 20
    assert cam.stats.errors == 0


@needs_rs
def test_calibration_file_overrides_factory_intrinsics(
    recording: Path, tmp_path: Path, cameras: list
) -> None:
    calibrated = Intrinsics(W, H, 150.0, 151.0, 79.0, 60.0, (0.05, -0.1, 0.0, 0.0, 0.02))
    save_camera_info(tmp_path / "cam.yaml", calibrated)
    cam = play(cameras, recording, calibration=tmp_path / "cam.yaml")
    assert cam.intrinsics == calibrated


@needs_rs
def test_calibration_for_another_size_is_refused(recording: Path, tmp_path: Path) -> None:
    save_camera_info(tmp_path / "cam.yaml", Intrinsics(640, 480, 600.0, 600.0, 320.0, 240.0))
    settings = CaptureSettings(pace=False, calibration=tmp_path / "cam.yaml")
    cam = RealSenseCamera(settings=settings, recording=recording)
    with pytest.raises(DriverError, match=r"is for 640x480 but the stream is 160x120$"):
        cam.connect()


@needs_rs
def test_asking_a_recording_for_a_mode_it_lacks(recording: Path) -> None:
    cam = RealSenseCamera(
        settings=CaptureSettings(width=1280, height=720, fps=30), recording=recording
    )
    with pytest.raises(DriverError, match=f"cannot play {recording}") as err:
        cam.connect()
    assert "\n" not in str(err.value)


@needs_rs
def test_missing_and_corrupt_recordings(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="no such RealSense recording"):
        RealSenseCamera(recording=tmp_path / "none.db3").connect()
    junk = tmp_path / "junk.db3"
    junk.write_bytes(b"not sqlite" * 50)
    with pytest.raises(DriverError, match=f"cannot play {junk}"):
        RealSenseCamera(recording=junk).connect()


@needs_rs
def test_wrong_serial_names_what_is_connected() -> None:
    connected = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
    found = ", ".join(connected) if connected else "none"
    with pytest.raises(DriverError) as err:
        RealSenseCamera("000000000000").connect()
    assert str(err.value) == f"no RealSense device with serial 000000000000 (found: {found})"


@needs_rs
def test_no_camera_at_all_is_a_driver_error() -> None:
    if len(rs.context().query_devices()) > 0:
        pytest.skip("a RealSense camera is connected")
    with pytest.raises(DriverError, match="no RealSense device found"):
        RealSenseCamera().connect()


def test_missing_pyrealsense2_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # import now fails
    with pytest.raises(DriverError) as err:
        RealSenseCamera().connect()
    assert str(err.value) == INSTALL_HINT


# -- intrinsics conversion, checked against librealsense's own projection ---------------


def grid_points() -> np.ndarray:
    us, vs = np.meshgrid(np.linspace(0, W - 1, 9), np.linspace(0, H - 1, 7))
    x = (us.ravel() - PPX) / FX
    y = (vs.ravel() - PPY) / FY
    return np.column_stack([x, y, np.ones_like(x)])


@needs_rs
@pytest.mark.parametrize(
    ("model", "tolerance_px"),
    [("brown_conrady", 1e-3), ("modified_brown_conrady", 0.05), ("inverse_brown_conrady", 0.05)],
)
def test_distortion_models_become_opencv_coefficients(model: str, tolerance_px: float) -> None:
    intr = intrinsics_from_realsense(W, H, FX, FY, PPX, PPY, model, COEFFS)
    points = grid_points()
    ours, _ = cv2.projectPoints(
        points, np.zeros(3), np.zeros(3), intr.matrix(), np.array(intr.dist)
    )
    theirs = np.array(
        [rs.rs2_project_point_to_pixel(rs_intrinsics(model, COEFFS), list(p)) for p in points]
    )
    assert np.abs(ours[:, 0, :] - theirs).max() < tolerance_px
    if model == "brown_conrady":
        assert intr.dist == pytest.approx(tuple(COEFFS))


def test_no_distortion_and_fisheye_models() -> None:
    assert intrinsics_from_realsense(W, H, FX, FY, PPX, PPY, "none", [0.0] * 5).dist == ()
    assert intrinsics_from_realsense(
        W, H, FX, FY, PPX, PPY, "inverse_brown_conrady", [0.0] * 5
    ) == (Intrinsics(W, H, FX, FY, PPX, PPY))
    with pytest.raises(ValueError, match="kannala_brandt4"):
        intrinsics_from_realsense(W, H, FX, FY, PPX, PPY, "kannala_brandt4", [0.1, 0.0, 0.0, 0.0])


# -- capture time ----------------------------------------------------------------------


def test_capture_stamp_from_global_time() -> None:
    # Host wall clock says 40 ms passed since the frame's (global-time) timestamp.
    stamp = capture_stamp(100.0, 1_700_000_000_040.0, 1_700_000_000_000.0, True, {})
    assert stamp == pytest.approx(100.0 - 0.040)


def test_capture_stamp_from_metadata_when_not_global_time() -> None:
    metadata = {
        "backend_timestamp": 1_700_000_000_030.0,  # the kernel had it 10 ms before now
        "frame_timestamp": 5_016_000.0,  # readout began 16 ms (device µs) after ...
        "sensor_timestamp": 5_000_000.0,  # ... the middle of the exposure
        "time_of_arrival": 1_700_000_000_035.0,
    }
    stamp = capture_stamp(100.0, 1_700_000_000_040.0, 5_016.0, False, metadata)
    assert stamp == pytest.approx(100.0 - 0.026)
    only_arrival = {"time_of_arrival": 1_700_000_000_035.0}
    assert capture_stamp(100.0, 1_700_000_000_040.0, 5_016.0, False, only_arrival) == (
        pytest.approx(100.0 - 0.005)
    )


def test_capture_stamp_ignores_clocks_out_of_step() -> None:
    # A recording played back later: its wall-clock stamps are hours old.
    assert capture_stamp(100.0, 1_700_000_000_000.0, 1_699_990_000_000.0, True, {}) == 100.0
    # Nor is a frame from the future believed.
    assert capture_stamp(100.0, 1_700_000_000_000.0, 1_700_000_000_100.0, True, {}) == 100.0
    assert capture_stamp(100.0, 1.0e12, 33.3, False, {}) == 100.0
