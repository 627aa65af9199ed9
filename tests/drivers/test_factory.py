"""Camera specs: parsing every accepted form, refusing the rest, and making real cameras."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_opencv_camera import frame_index, write_video
from test_realsense import needs_rs, recorded_index, write_recording

from grasprt.calibration.camera_info import save_camera_info
from grasprt.drivers.factory import (
    CAMERA_SPEC_FORMS,
    CAMERA_SPEC_HELP,
    CameraSpec,
    make_camera,
    parse_camera_spec,
)
from grasprt.drivers.opencv_camera import OpenCVCamera, opencv_has_gstreamer
from grasprt.drivers.realsense import RealSenseCamera
from grasprt.errors import ConfigError, DriverError
from grasprt.types import Camera, Intrinsics


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("sim", CameraSpec("sim")),
        ("realsense", CameraSpec("realsense")),
        ("realsense:923322071234", CameraSpec("realsense", "923322071234")),
        ("realsense@640x480x30", CameraSpec("realsense", None, 640, 480, 30)),
        ("realsense:923322071234@1280x720", CameraSpec("realsense", "923322071234", 1280, 720)),
        ("realsense:923322071234,settle=30", CameraSpec("realsense", "923322071234", settle=30)),
        ("realsense:run.db3", CameraSpec("realsense", "run.db3")),
        (
            "realsense:/data/run.bag,loop,pace=fast",
            CameraSpec("realsense", "/data/run.bag", loop=True, pace=False),
        ),
        ("opencv:0", CameraSpec("opencv", "0")),
        ("opencv:/dev/video2@1280x720x30", CameraSpec("opencv", "/dev/video2", 1280, 720, 30)),
        ("opencv:0,fourcc=MJPG", CameraSpec("opencv", "0", fourcc="MJPG")),
        ("opencv:clip.mp4,loop=0", CameraSpec("opencv", "clip.mp4", loop=False)),
        ("opencv:clip.avi,loop,pace=file", CameraSpec("opencv", "clip.avi", loop=True)),
        ("opencv:/videos/at@home.mp4", CameraSpec("opencv", "/videos/at@home.mp4")),
        (
            "gst:v4l2src ! video/x-raw,width=640 ! videoconvert ! appsink",
            CameraSpec("gst", "v4l2src ! video/x-raw,width=640 ! videoconvert ! appsink"),
        ),
        ("  opencv:1  ", CameraSpec("opencv", "1")),
    ],
)
def test_accepted_forms(spec: str, expected: CameraSpec) -> None:
    assert parse_camera_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", None),
        ("webcam", None),
        ("opencv", "needs a device index"),
        ("sim:2", "sim takes no target"),
        ("realsense:clip.mp4", "neither a serial number nor a .db3/.bag recording"),
        ("realsense@0x480", "must be positive"),
        ("opencv:0,loop", "loop applies to recordings and video files only"),
        ("realsense:923322071234,pace=fast", "pace applies to recordings"),
        ("opencv:clip.mp4,pace=slow", "pace is 'file'"),
        ("opencv:clip.mp4@640x480", "plays at its own size"),
        ("opencv:0,fourcc=MJPEG", "fourcc takes 4 characters"),
        ("opencv:clip.mp4,loop=maybe", "loop takes no value or 0/1"),
        ("realsense,settle=some", "settle takes a frame count"),
        ("realsense,exposure=100", "unknown option 'exposure=100'"),
        ("gst:", "gst: needs a pipeline"),
    ],
)
def test_refused_forms_say_why_in_one_line(spec: str, reason: str | None) -> None:
    with pytest.raises(ConfigError) as err:
        parse_camera_spec(spec)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"bad camera spec {spec!r}")
    assert message.endswith(CAMERA_SPEC_FORMS)
    if reason:
        assert reason in message


@given(
    st.integers(1, 10_000),
    st.integers(1, 10_000),
    st.one_of(st.none(), st.integers(1, 1000)),
    st.sampled_from(["realsense:123456", "opencv:0", "opencv:/dev/video4"]),
)
def test_modes_parse_back(width: int, height: int, fps: int | None, head: str) -> None:
    mode = f"@{width}x{height}" + (f"x{fps}" if fps else "")
    spec = parse_camera_spec(head + mode)
    assert (spec.width, spec.height, spec.fps) == (width, height, fps)
    assert spec.target == head.split(":", 1)[1]


def test_help_text_names_every_kind() -> None:
    for kind in ("sim", "realsense", "opencv:", "gst:", "ros:", "@WxH", "loop", "pace=fast"):
        assert kind in CAMERA_SPEC_HELP


def test_sim_needs_the_sim_robot() -> None:
    with pytest.raises(DriverError, match=r"^the sim camera needs --robot sim$"):
        make_camera("sim")


def test_sim_uses_the_factory_given(tmp_path: Path) -> None:
    made: list[Camera] = []

    def factory() -> Camera:
        cam = OpenCVCamera(str(write_video(tmp_path / "sim.avi", 3)), kind="file")
        made.append(cam)
        return cam

    assert make_camera("sim", sim_camera_factory=factory) is made[0]
    with pytest.raises(ConfigError, match="does not apply to the sim camera"):
        make_camera("sim", sim_camera_factory=factory, calibration=str(tmp_path / "c.yaml"))


def test_opencv_file_spec_makes_a_working_camera(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.avi", 12)
    intr = Intrinsics(64, 48, 60.0, 60.0, 32.0, 24.0)
    save_camera_info(tmp_path / "cam.yaml", intr)
    cam = make_camera(f"opencv:{clip},pace=fast", calibration=str(tmp_path / "cam.yaml"))
    assert isinstance(cam, OpenCVCamera) and isinstance(cam, Camera)
    assert cam.name == f"opencv:{clip},pace=fast"
    cam.connect()
    try:
        frame = cam.wait_for_frame()
        assert frame is not None and 0 <= frame_index(frame.image) < 12
        assert cam.intrinsics == intr
    finally:
        cam.disconnect()


def test_missing_calibration_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such calibration file"):
        make_camera("opencv:0", calibration=str(tmp_path / "missing.yaml"))


def test_device_specs_make_device_cameras_that_fail_clearly() -> None:
    cam = make_camera("opencv:/dev/video98@1280x720x30,fourcc=MJPG")
    assert isinstance(cam, OpenCVCamera) and cam.kind == "device"
    with pytest.raises(DriverError, match="cannot open /dev/video98"):
        cam.connect()


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer")
def test_gst_spec_without_gstreamer_fails_clearly() -> None:
    cam = make_camera("gst:videotestsrc ! videoconvert ! appsink")
    assert isinstance(cam, OpenCVCamera) and cam.kind == "gstreamer"
    with pytest.raises(DriverError, match="without GStreamer"):
        cam.connect()


@needs_rs
def test_realsense_recording_spec_plays(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "run.db3", 10)
    cam = make_camera(f"realsense:{path},pace=fast,settle=2")
    assert isinstance(cam, RealSenseCamera) and cam.recording == path
    cam.connect()
    try:
        frame = cam.wait_for_frame()
        assert frame is not None and recorded_index(frame) >= 2
        assert cam.intrinsics is not None and cam.intrinsics.width == 160
    finally:
        cam.disconnect()


def test_realsense_serial_spec_keeps_serial_and_mode() -> None:
    cam = make_camera("realsense:923322071234@1280x720x15")
    assert isinstance(cam, RealSenseCamera)
    assert (cam.serial, cam.width, cam.height, cam.fps) == ("923322071234", 1280, 720, 15)
    assert cam.recording is None and cam.settle_frames > 0
