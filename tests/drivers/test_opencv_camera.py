"""The OpenCV camera and the newest-frame capture thread, on real video files.

Each test writes an MJPG .avi with cv2.VideoWriter in which frame i is a flat colour
that encodes i in blue (STEP * i) under a constant red, so every frame read back says
which one it is, and where the constant channel lands shows the RGB conversion.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from grasprt.calibration.camera_info import save_camera_info
from grasprt.drivers.capture_camera import CaptureSettings
from grasprt.drivers.newest_frame import EndOfStream, NewestFrame
from grasprt.drivers.opencv_camera import OpenCVCamera, opencv_has_gstreamer, v4l2_capture_stamp
from grasprt.errors import DriverError
from grasprt.types import Camera, Frame, Intrinsics

STEP = 8
RED = 200
W, H = 64, 48


def write_video(path: Path, frames: int, fps: float = 50.0) -> Path:
    assert STEP * (frames - 1) <= 255
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        bgr = np.zeros((H, W, 3), np.uint8)
        bgr[..., 0] = STEP * i
        bgr[..., 2] = RED
        writer.write(bgr)
    writer.release()
    return path


def frame_index(image: np.ndarray) -> int:
    """Which frame of write_video this RGB image is; checks the channel order too."""
    assert abs(image[..., 0].mean() - RED) < STEP, "red is not channel 0: not RGB order"
    return round(image[..., 2].mean() / STEP)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.avi", 30)


@pytest.fixture
def camera_factory() -> Iterator[list[OpenCVCamera]]:
    cameras: list[OpenCVCamera] = []
    yield cameras
    for cam in cameras:
        cam.disconnect()


def open_file(cameras: list[OpenCVCamera], path: Path, **kwargs: object) -> OpenCVCamera:
    cam = OpenCVCamera(str(path), CaptureSettings(**kwargs), kind="file")  # type: ignore[arg-type]
    cameras.append(cam)
    cam.connect()
    return cam


def read_until_end(cam: OpenCVCamera) -> list[Frame]:
    seen: list[Frame] = []
    while True:
        frame = cam.wait_for_frame(seen[-1].seq if seen else -1, timeout_s=5.0)
        if frame is None:
            return seen
        seen.append(frame)


def test_frames_come_through_in_order_as_rgb(clip: Path, camera_factory: list) -> None:
    cam = open_file(camera_factory, clip, pace=False)
    assert isinstance(cam, Camera)
    assert (cam.actual_width, cam.actual_height, cam.actual_fps) == (W, H, 50.0)
    seen = read_until_end(cam)
    indices = [frame_index(f.image) for f in seen]
    assert indices == sorted(set(indices)), "frames out of order or repeated"
    assert indices[-1] == 29
    for f, i in zip(seen, indices, strict=True):
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
        # The file position (device stamp) is frame i's time in a 50 fps file.
        assert f.device_stamp == pytest.approx(i / 50.0)
    assert all(b.stamp >= a.stamp for a, b in itertools.pairwise(seen))
    stats = cam.stats
    assert stats.frames == 30 and stats.ended and stats.errors == 0
    assert cam.intrinsics is None


def test_end_of_file_stops_and_keeps_the_last_frame(clip: Path, camera_factory: list) -> None:
    cam = open_file(camera_factory, clip, pace=False)
    assert cam.wait_for_frames(30)
    read_until_end(cam)
    assert cam.stats.ended
    last = cam.latest()
    assert last is not None and frame_index(last.image) == 29
    assert cam.wait_for_frame(last.seq, timeout_s=0.2) is None


def test_loop_starts_the_file_again(clip: Path, camera_factory: list) -> None:
    cam = open_file(camera_factory, clip, pace=False, loop=True)
    seen = [cam.wait_for_frame()]
    wraps = 0
    # Read until the file has visibly started again twice. An unpaced camera outruns a
    # reader on a loaded machine (it keeps only the newest frame), so count wraps in
    # what was seen rather than expect to see a fixed share of the frames.
    while wraps < 2:
        assert cam.stats.frames < 2000, "the file did not start again"
        frame = cam.wait_for_frame(seen[-1].seq)
        assert frame is not None  # a file that ended instead of looping
        wraps += frame_index(frame.image) < frame_index(seen[-1].image)
        seen.append(frame)
    assert not cam.stats.ended
    assert [f.seq for f in seen] == sorted({f.seq for f in seen})


def test_a_slow_reader_skips_frames_instead_of_queueing(tmp_path: Path, camera_factory: list):
    path = write_video(tmp_path / "fast.avi", 30, fps=100.0)
    cam = open_file(camera_factory, path, loop=True)  # paced at the file's 100 fps
    first = cam.wait_for_frame()
    assert first is not None
    # Let at least five more frames arrive without reading any of them.
    assert cam.wait_for_frames(cam.stats.frames + 5)
    newest = cam.latest()
    assert newest is not None
    assert newest.seq >= first.seq + 5
    assert cam.stats.drops >= 4


def test_a_held_frame_is_never_overwritten(clip: Path, camera_factory: list) -> None:
    cam = open_file(camera_factory, clip, pace=False)
    first = cam.latest()
    assert first is not None
    kept = first.image.copy()
    read_until_end(cam)
    np.testing.assert_array_equal(first.image, kept)


def test_settle_frames_are_dropped(clip: Path, camera_factory: list) -> None:
    cam = open_file(camera_factory, clip, pace=False, settle_frames=4)
    seen = read_until_end(cam)
    assert frame_index(seen[0].image) >= 4
    assert cam.stats.frames == 26


def test_reconnect_after_disconnect_plays_from_the_start(clip: Path, camera_factory: list):
    cam = open_file(camera_factory, clip, pace=False)
    read_until_end(cam)
    last_seq = cam.stats.frames
    cam.disconnect()
    cam.connect()
    frame = cam.wait_for_frame(last_seq)
    assert frame is not None and frame.seq > last_seq
    assert frame_index(frame.image) < 29


def test_calibration_file_gives_intrinsics(clip: Path, tmp_path: Path, camera_factory: list):
    intr = Intrinsics(W, H, 55.0, 56.0, 31.0, 24.0, (0.1, -0.02, 0.0, 0.0, 0.0))
    save_camera_info(tmp_path / "cam.yaml", intr)
    cam = open_file(camera_factory, clip, pace=False, calibration=tmp_path / "cam.yaml")
    assert cam.intrinsics == intr


def test_calibration_for_another_size_is_refused(clip: Path, tmp_path: Path) -> None:
    save_camera_info(tmp_path / "cam.yaml", Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0))
    cam = OpenCVCamera(str(clip), CaptureSettings(calibration=tmp_path / "cam.yaml"), kind="file")
    with pytest.raises(DriverError, match=r"is for 640x480 but the stream is 64x48$"):
        cam.connect()


def test_missing_file_is_a_driver_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(DriverError, match=f"no such video file: {missing}"):
        OpenCVCamera(str(missing), kind="file").connect()


def test_a_file_that_is_not_video_is_a_driver_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DriverError, match="cannot open video file") as err:
        OpenCVCamera(str(junk), kind="file").connect()
    assert "\n" not in str(err.value)


def test_an_empty_video_says_so(tmp_path: Path) -> None:
    path = write_video(tmp_path / "empty.avi", 0)
    cam = OpenCVCamera(str(path), CaptureSettings(first_frame_timeout_s=2.0), kind="file")
    with pytest.raises(DriverError, match=r": the video has no frames$"):
        cam.connect()


@pytest.mark.parametrize("source", ["/dev/video97", "97"])
def test_missing_device_is_a_driver_error(source: str) -> None:
    with pytest.raises(DriverError, match=r"cannot open /dev/video97"):
        OpenCVCamera(source, kind="device").connect()


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer")
def test_gstreamer_missing_from_opencv_is_explained() -> None:
    cam = OpenCVCamera("videotestsrc ! videoconvert ! appsink", kind="gstreamer")
    with pytest.raises(DriverError, match="built without GStreamer"):
        cam.connect()


def test_bad_fourcc_is_refused() -> None:
    with pytest.raises(DriverError, match="fourcc"):
        OpenCVCamera("0", kind="device", fourcc="MJPEG")


def test_v4l2_buffer_stamp_used_only_when_believable() -> None:
    arrival = 1000.0
    assert v4l2_capture_stamp(arrival, 999_960.0) == pytest.approx(999.96)
    # A stamp from another clock (wall time in ms) is far off: arrival stands.
    assert v4l2_capture_stamp(arrival, 1.7e12) == arrival
    # A stamp in the future is not a capture time either.
    assert v4l2_capture_stamp(arrival, 1_000_100.0) == arrival


# -- the newest-frame thread itself, fed by a real cv2.VideoCapture ----------------------


def capture_reader(path: Path) -> tuple[cv2.VideoCapture, list[int]]:
    return cv2.VideoCapture(str(path)), [0]


def test_newest_frame_counts_frames_and_ends(clip: Path) -> None:
    cap, count = capture_reader(clip)

    def grab() -> Frame | None:
        ok, bgr = cap.read()
        if not ok:
            raise EndOfStream("done")
        count[0] += 1
        return Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), float(count[0]), count[0])

    capture = NewestFrame("file", grab)
    assert capture.latest() is None
    capture.start()
    assert capture.wait_for_frames(30)
    assert capture.wait_for_frame(29) is not None
    capture.stop()
    stats = capture.stats
    assert (stats.frames, stats.errors) == (30, 0)
    newest = capture.latest()
    assert newest is not None and newest.seq == 30 and frame_index(newest.image) == 29
    cap.release()


def test_newest_frame_counts_errors_and_keeps_running(clip: Path) -> None:
    cap, failures = capture_reader(clip)
    cap.release()  # every read now fails, as on an unplugged camera
    retried = threading.Event()

    def grab() -> Frame | None:
        ok, _ = cap.read()
        if ok:
            raise AssertionError("a released capture gave a frame")
        failures[0] += 1
        if failures[0] >= 3:
            retried.set()
        raise DriverError("read failed")

    capture = NewestFrame("dead", grab, error_backoff_s=0.001, max_error_backoff_s=0.01)
    capture.start()
    assert retried.wait(5.0)
    assert capture.stop()
    stats = capture.stats
    assert stats.errors == failures[0] >= 3
    assert stats.last_error == "read failed"
    assert stats.frames == 0 and not stats.ended
    assert capture.latest() is None


def test_newest_frame_restarts_with_counters_kept(clip: Path) -> None:
    cap, count = capture_reader(clip)

    def grab() -> Frame | None:
        ok, bgr = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            return None
        count[0] += 1
        return Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 0.0, count[0])

    capture = NewestFrame("restart", grab)
    capture.start()
    assert capture.wait_for_frames(10)
    capture.restart()
    assert capture.running
    before = capture.stats.frames
    assert capture.wait_for_frames(before + 10)
    assert capture.stop()
    assert not capture.running
    cap.release()
