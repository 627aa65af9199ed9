"""The ROS camera (`--camera ros:TOPIC`).

Unmarked tests cover what needs no ROS: decoding pixels from bytes, CameraInfo-like
objects to Intrinsics, stamps, and the spec. Tests marked ``ros`` run one real roscore
for the session and publish real ``sensor_msgs/Image`` and ``CameraInfo`` messages from
this process (a :class:`Stream` on its own thread), through TCPROS, to the camera.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from grasprt.calibration.camera_info import load_camera_info, save_camera_info
from grasprt.drivers.capture_camera import CaptureSettings
from grasprt.drivers.factory import CAMERA_SPEC_FORMS, CameraSpec, make_camera, parse_camera_spec
from grasprt.drivers.ros_camera import (
    MAX_LATENCY_S,
    RosCamera,
    UnsupportedEncoding,
    image_to_rgb,
    info_topic_for,
    intrinsics_from_camera_info,
    loop_stamp,
)
from grasprt.errors import ConfigError, DriverError
from grasprt.types import Intrinsics

W, H = 13, 7  # odd sizes: a row/column mix-up cannot pass
RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (H, W), dtype=np.uint8)
INTR = Intrinsics(W, H, 11.5, 12.5, 6.25, 3.75, (0.1, -0.02, 0.001, 0.002, 0.003))
PAD_BYTE = 0xAB  # what a decoder that ignores `step` would show


def encode(encoding: str, pad: int = 0) -> tuple[bytes, int, np.ndarray]:
    """(data, step, the RGB image it decodes to) for the test pattern in ``encoding``."""
    if encoding == "mono8":
        pixels, expected = GRAY[:, :, None], np.repeat(GRAY[:, :, None], 3, axis=2)
    else:
        order = [2, 1, 0] if encoding.startswith("bgr") else [0, 1, 2]
        pixels, expected = RGB[:, :, order], RGB
        if encoding.endswith("a8"):
            pixels = np.concatenate([pixels, np.full((H, W, 1), 200, np.uint8)], axis=2)
    rows = pixels.reshape(H, -1)
    padded = np.full((H, rows.shape[1] + pad), PAD_BYTE, np.uint8)
    padded[:, : rows.shape[1]] = rows
    return padded.tobytes(), padded.shape[1], expected


def camera_info_like(intr: Intrinsics, model: str = "plumb_bob", **extra: Any) -> Any:
    fields = {
        "width": intr.width,
        "height": intr.height,
        "K": [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0],
        "D": list(intr.dist),
        "distortion_model": model,
        "binning_x": 0,
        "binning_y": 0,
        "roi": SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False),
    }
    return SimpleNamespace(**{**fields, **extra})


# -- no ROS needed ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
@pytest.mark.parametrize("pad", [0, 5])
def test_encodings_decode_to_exact_rgb(encoding: str, pad: int) -> None:
    data, step, expected = encode(encoding, pad)
    image = image_to_rgb(data, H, W, step, encoding)
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)
    np.testing.assert_array_equal(image, expected)
    assert image.flags.writeable and image.flags.c_contiguous


def test_other_encodings_and_short_data_are_refused_with_a_reason() -> None:
    with pytest.raises(UnsupportedEncoding, match=r"encoding '16UC1' is not supported \(use "):
        image_to_rgb(bytes(H * W * 2), H, W, W * 2, "16UC1")
    with pytest.raises(ValueError, match="step 12 is shorter than a row of 13 mono8"):
        image_to_rgb(bytes(H * 12), H, W, 12, "mono8")
    with pytest.raises(ValueError, match="90 bytes of data for 7 rows of 13 bytes"):
        image_to_rgb(bytes(90), H, W, W, "mono8")


def test_camera_info_to_intrinsics_with_distortion() -> None:
    assert intrinsics_from_camera_info(camera_info_like(INTR)) == INTR
    rational = Intrinsics(W, H, 11.5, 12.5, 6.25, 3.75, (0.1, -0.2, 0.0, 0.0, 0.3, 0.4, 0.5, 0.6))
    assert intrinsics_from_camera_info(camera_info_like(rational, "rational_polynomial")) == (
        rational
    )
    flat = camera_info_like(Intrinsics(W, H, 11.5, 12.5, 6.25, 3.75, (0.0,) * 5))
    assert intrinsics_from_camera_info(flat).dist == ()


def test_camera_info_binning_and_roi_give_the_published_image() -> None:
    full = Intrinsics(640, 480, 500.0, 510.0, 320.0, 240.0)
    roi = SimpleNamespace(x_offset=100, y_offset=40, width=400, height=300, do_rectify=False)
    got = intrinsics_from_camera_info(camera_info_like(full, roi=roi, binning_x=2, binning_y=2))
    assert got == Intrinsics(200, 150, 250.0, 255.0, 110.0, 100.0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"K": [0.0] * 9}, "/cam/camera_info: the camera is not calibrated"),
        ({"distortion_model": "equidistant"}, "'equidistant' is not supported"),
        ({"D": [0.1, 0.2, 0.3]}, "'plumb_bob' takes 4 or 5 coefficients"),
        ({"K": [float("nan")] * 9}, "finite"),
    ],
)
def test_unusable_camera_info_is_refused(change: dict, reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        intrinsics_from_camera_info(camera_info_like(INTR, **change), "/cam/camera_info")


def test_info_topic_is_beside_the_image_topic() -> None:
    assert (
        info_topic_for("/io/internal_camera/right_hand_camera/image_raw")
        == "/io/internal_camera/right_hand_camera/camera_info"
    )
    assert info_topic_for("/camera/color/image_raw") == "/camera/color/camera_info"
    assert info_topic_for("/image") == "/camera_info"
    assert info_topic_for("cam/image") == "cam/camera_info"


def test_loop_stamps_map_header_stamps_and_fall_back_to_receipt() -> None:
    offset = 1000.0  # loop clock = ROS time + 1000
    assert loop_stamp(5.0, 1005.02, offset) == (1005.0, None)
    stamp, why = loop_stamp(0.0, 1005.02, offset)
    assert stamp == 1005.02 and why is not None and "no header stamps" in why
    assert loop_stamp(5.0, 1005.02, None)[0] == 1005.02
    assert loop_stamp(5.001, 1005.0, offset) == (1005.0, None)  # NTP jitter: no warning
    for header in (5.0 - MAX_LATENCY_S - 0.1, 5.5):  # too old, from the future
        stamp, why = loop_stamp(header, 1005.0, offset)
        assert stamp == 1005.0 and why is not None and "not this machine's" in why


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ros:/a/b", CameraSpec("ros", "/a/b")),
        (
            "ros:/io/internal_camera/right_hand_camera/image_raw",
            CameraSpec("ros", "/io/internal_camera/right_hand_camera/image_raw"),
        ),
        ("ros:camera/color/image_raw", CameraSpec("ros", "camera/color/image_raw")),
        ("ros:/camera/image_raw,settle=3", CameraSpec("ros", "/camera/image_raw", settle=3)),
    ],
)
def test_ros_specs_are_accepted(spec: str, expected: CameraSpec) -> None:
    assert parse_camera_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("ros:", "ros: needs a topic"),
        ("ros", "ros: needs a topic"),
        ("ros:/x@640", "'/x@640' is not a ROS topic name"),
        ("ros:/a//b", "not a ROS topic name"),
        ("ros:/a/", "not a ROS topic name"),
        ("ros:~private", "not a ROS topic name"),
        ("ros:/a b", "not a ROS topic name"),
        ("ros:/x,loop", "loop applies to recordings"),
    ],
)
def test_bad_ros_specs_are_refused(spec: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_camera_spec(spec)
    message = str(err.value)
    assert "\n" not in message and reason in message and message.endswith(CAMERA_SPEC_FORMS)


def test_a_mode_is_refused_since_a_topic_has_its_own_size() -> None:
    # Refused when the spec is parsed, before anything of ROS is touched.
    with pytest.raises(ConfigError, match=r"^bad camera spec 'ros:/x@640x480': .*own size"):
        parse_camera_spec("ros:/x@640x480")
    with pytest.raises(ConfigError, match=r"^bad camera spec 'ros:/x@640x480': .*own size"):
        make_camera("ros:/x@640x480")


def test_the_module_imports_without_ros() -> None:
    code = "import sys, grasprt.drivers.ros_camera; assert 'rospy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- over a real roscore ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ros(ros_node: dict[str, str]) -> Any:
    """rospy with this process's node on the session's master (tests/conftest.py)."""
    import rospy

    return rospy


class Stream:
    """Publishes one topic's Images (and CameraInfo beside it) from its own thread.

    ``make(i)`` gives the i-th message's (data, step, encoding); each message's header
    stamp is ``rospy.Time.now()`` plus ``shift_s`` (None: a zero stamp), and ``sent``
    maps each header stamp to the monotonic time of its publish (``spread``: how far
    off that can be, half the time between the two monotonic reads around the stamp).
    """

    def __init__(
        self,
        rospy: Any,
        topic: str,
        make: Callable[[int], tuple[bytes, int, str]],
        *,
        info: Any = None,
        shift_s: float | None = 0.0,
        hz: float = 50.0,
    ) -> None:
        from sensor_msgs.msg import CameraInfo, Image

        self.rospy, self.make, self.info, self.shift_s, self.hz = rospy, make, info, shift_s, hz
        self.pub = rospy.Publisher(topic, Image, queue_size=1)
        self.info_pub = (
            rospy.Publisher(info_topic_for(topic), CameraInfo, queue_size=1) if info else None
        )
        self.count = 0
        self.sent: dict[float, float] = {}
        self.spread: dict[float, float] = {}
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.pub.unregister()
        if self.info_pub is not None:
            self.info_pub.unregister()

    def pause(self) -> None:
        self._paused.set()
        time.sleep(2.0 / self.hz)  # one in flight lands before the test goes on

    def send(self) -> int:
        """Publish the next message now; its index."""
        from sensor_msgs.msg import Image

        with self._lock:
            i, self.count = self.count, self.count + 1
            data, step, encoding = self.make(i)
            msg = Image(height=H, width=W, encoding=encoding, step=step, data=data)
            before = time.monotonic()
            if self.shift_s is not None:
                shift = self.rospy.Duration.from_sec(self.shift_s)
                msg.header.stamp = self.rospy.Time.now() + shift
            after = time.monotonic()
            key = msg.header.stamp.to_sec()
            # Recorded before publishing: the frame may arrive at once.
            self.sent[key], self.spread[key] = (before + after) / 2.0, (after - before) / 2.0
            self.pub.publish(msg)
            if self.info_pub is not None:
                self.info_pub.publish(self.info)
            return i

    def _run(self) -> None:
        while not self._stop.wait(1.0 / self.hz):
            if not self._paused.is_set():
                self.send()


def info_msg(intr: Intrinsics = INTR, model: str = "plumb_bob") -> Any:
    from sensor_msgs.msg import CameraInfo

    like = camera_info_like(intr, model)
    return CameraInfo(
        width=like.width, height=like.height, K=like.K, D=like.D, distortion_model=model
    )


def pattern(encoding: str, pad: int = 0) -> Callable[[int], tuple[bytes, int, str]]:
    data, step, _ = encode(encoding, pad)
    return lambda i: (data, step, encoding)


def flat(i: int) -> tuple[bytes, int, str]:
    """Message i is a flat image of value i: which one a frame is shows in its pixels."""
    return bytes([i % 256]) * (H * W), W, "mono8"


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    return "/" + re.sub(r"\W", "_", request.node.name).strip("_") + "/image_raw"


@pytest.fixture
def cameras() -> Iterator[list[RosCamera]]:
    made: list[RosCamera] = []
    yield made
    for cam in made:
        cam.disconnect()


def camera(
    made: list[RosCamera], topic: str, *, timeout_s: float = 5.0, **settings: Any
) -> RosCamera:
    info_timeout_s = settings.pop("info_timeout_s", 2.0)
    cam = RosCamera(
        topic,
        CaptureSettings(first_frame_timeout_s=timeout_s, **settings),
        info_timeout_s=info_timeout_s,
    )
    made.append(cam)
    return cam


def subscribers(topic: str) -> list[str]:
    import rosgraph

    _, subs, _ = rosgraph.Master("/test").getSystemState()
    return next((nodes for name, nodes in subs if name == topic), [])


@pytest.mark.ros
@pytest.mark.parametrize(("encoding", "pad"), [("rgb8", 3), ("bgr8", 5), ("mono8", 3)])
def test_frames_decode_to_the_published_pixels(
    ros: Any, topic: str, cameras: list, encoding: str, pad: int
) -> None:
    with Stream(ros, topic, pattern(encoding, pad), info=info_msg()):
        cam = camera(cameras, topic)
        cam.connect()
        frame = cam.wait_for_frame()
        assert frame is not None
        np.testing.assert_array_equal(frame.image, encode(encoding)[2])
        assert cam.describe()["encoding"] == encoding and cam.describe()["size"] == [W, H]


@pytest.mark.ros
@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial"])
def test_intrinsics_come_from_the_camera_info(
    ros: Any, topic: str, cameras: list, model: str
) -> None:
    dist = INTR.dist if model == "plumb_bob" else (0.1, -0.2, 0.01, 0.02, 0.3, 0.4, 0.5, 0.6)
    intr = Intrinsics(W, H, 11.5, 12.5, 6.25, 3.75, dist)
    with Stream(ros, topic, flat, info=info_msg(intr, model)):
        cam = camera(cameras, topic)
        cam.connect()
        assert cam.intrinsics == intr
        assert cam.describe()["intrinsics_from"] == f"CameraInfo {info_topic_for(topic)}"


@pytest.mark.ros
def test_a_relative_topic_resolves_in_the_nodes_namespace(ros: Any, cameras: list) -> None:
    with Stream(ros, "/relative_cam/image_raw", flat, info=info_msg()):
        cam = camera(cameras, "relative_cam/image_raw")
        cam.connect()
        assert cam.topic == "/relative_cam/image_raw" and cam.intrinsics == INTR


@pytest.mark.ros
def test_the_calibration_file_serves_when_there_is_no_camera_info(
    ros: Any, topic: str, cameras: list, tmp_path: Path
) -> None:
    save_camera_info(tmp_path / "cam.yaml", INTR)
    with Stream(ros, topic, flat):
        cam = make_camera(f"ros:{topic}", calibration=str(tmp_path / "cam.yaml"))
        assert isinstance(cam, RosCamera)
        cameras.append(cam)
        cam.connect()
        assert cam.intrinsics == load_camera_info(tmp_path / "cam.yaml")
        assert cam.describe()["intrinsics_from"] == f"calibration {tmp_path / 'cam.yaml'}"
        assert cam.wait_for_frame() is not None


@pytest.mark.ros
def test_no_camera_info_and_no_calibration_names_both(ros: Any, topic: str, cameras: list) -> None:
    with Stream(ros, topic, flat):
        cam = camera(cameras, topic, info_timeout_s=0.5)
        with pytest.raises(DriverError) as err:
            cam.connect()
    message = str(err.value)
    assert "\n" not in message
    assert f"no CameraInfo on {info_topic_for(topic)} within 0.5 s" in message
    assert "--calibration FILE.yaml" in message
    assert subscribers(topic) == []  # refused before subscribing to the images


@pytest.mark.ros
def test_camera_info_for_another_size_is_refused(ros: Any, topic: str, cameras: list) -> None:
    other = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    with Stream(ros, topic, flat, info=info_msg(other)):
        cam = camera(cameras, topic)
        with pytest.raises(DriverError, match=r"is for 640x480 but the stream is 13x7$"):
            cam.connect()


@pytest.mark.ros
def test_a_slow_reader_gets_the_newest_frame_and_the_rest_are_drops(
    ros: Any, topic: str, cameras: list
) -> None:
    with Stream(ros, topic, flat, info=info_msg()) as stream:
        cam = camera(cameras, topic)
        cam.connect()
        stream.pause()
        assert cam.latest() is not None  # read: what follows starts unread
        before = cam.stats
        sent = []
        for _ in range(8):  # spaced out, so that rospy itself keeps each of them
            sent.append(stream.send())
            time.sleep(0.02)
        cam.wait_for_frames(before.frames + len(sent), timeout_s=2.0)
        newest = cam.latest()
        after = cam.stats
    delivered = after.frames - before.frames
    assert newest is not None and newest.image[0, 0, 0] == sent[-1] % 256
    assert delivered >= 2
    assert after.drops - before.drops == delivered - 1
    assert newest.seq == after.frames  # the base numbers every delivered frame


@pytest.mark.ros
def test_header_stamps_land_on_the_monotonic_clock(ros: Any, topic: str, cameras: list) -> None:
    with Stream(ros, topic, flat, info=info_msg()) as stream:
        cam = camera(cameras, topic)
        cam.connect()
        frames, seq = [], -1
        while len(frames) < 10:
            frame = cam.wait_for_frame(seq)
            assert frame is not None
            frames.append(frame)
            seq = frame.seq
        offset = cam.clock_offset_s
    # A delay between the two reads only lowers monotonic - time: the largest is truest.
    now_offset = max(time.monotonic() - time.time() for _ in range(5))
    for frame in frames:
        assert frame.device_stamp in stream.sent
        # Published at `sent` on the monotonic clock: the stamp says so, to a few ms (and
        # to how well the publish time is known: a thread switch can fall in between).
        error = 0.003 + stream.spread[frame.device_stamp]
        assert frame.stamp == pytest.approx(stream.sent[frame.device_stamp], abs=error)
    assert offset is not None and offset == pytest.approx(now_offset, abs=0.002)
    assert cam.describe()["clock_offset_s"] == offset
    assert cam.describe()["stamps"] == "header"
    latency = cam.describe()["latency_s"]
    assert latency is not None and 0.0 <= latency <= MAX_LATENCY_S


@pytest.mark.ros
def test_a_zero_stamp_is_stamped_on_receipt_said_once(
    ros: Any, topic: str, cameras: list, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="grasprt.drivers.ros_camera")
    with Stream(ros, topic, flat, info=info_msg(), shift_s=None) as stream:
        cam = camera(cameras, topic)
        cam.connect()
        first = cam.wait_for_frame()
        assert first is not None
        received = time.monotonic()
        second = cam.wait_for_frame(first.seq)
    assert second is not None and second.device_stamp is None
    assert max(stream.sent.values()) - 1.0 < first.stamp <= received
    assert cam.describe()["stamps"] == "receipt"
    said = [r for r in caplog.records if "no header stamps" in r.getMessage()]
    assert len(said) == 1 and "stamped on receipt" in said[0].getMessage()


@pytest.mark.ros
def test_stamps_from_an_unsynchronised_clock_give_way_to_receipt(
    ros: Any, topic: str, cameras: list, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="grasprt.drivers.ros_camera")
    with Stream(ros, topic, flat, info=info_msg(), shift_s=-10.0) as stream:
        cam = camera(cameras, topic)
        cam.connect()
        frame = cam.wait_for_frame()
        received = time.monotonic()
        assert frame is not None and cam.wait_for_frames(cam.stats.frames + 3)
    published = stream.sent[frame.device_stamp]
    assert published <= frame.stamp <= received  # the receipt, not 10 s before
    assert cam.describe()["stamps"] == "receipt" and cam.describe()["latency_s"] is None
    said = [r.getMessage() for r in caplog.records if "not this machine's" in r.getMessage()]
    assert len(said) == 1 and "(a stamp +10.0" in said[0]


@pytest.mark.ros
def test_a_topic_of_another_type_is_refused_at_connect(ros: Any, topic: str, cameras: list) -> None:
    from std_msgs.msg import String

    pub = ros.Publisher(topic, String, queue_size=1)
    try:
        cam = camera(cameras, topic)
        with pytest.raises(DriverError) as err:
            cam.connect()
    finally:
        pub.unregister()
    assert str(err.value) == (
        f"ros:{topic}: {topic} carries std_msgs/String, not sensor_msgs/Image "
        "(give a raw image topic, e.g. .../image_raw)"
    )
    assert subscribers(topic) == []


@pytest.mark.ros
@pytest.mark.parametrize("sawyer", [False, True])
def test_a_topic_nobody_publishes_times_out_naming_it(
    ros: Any, topic: str, cameras: list, sawyer: bool
) -> None:
    if sawyer:
        topic = "/io/internal_camera/right_hand_camera/image_raw"
    cam = camera(cameras, topic, timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(DriverError) as err:
        cam.connect()
    # A bound on a timeout, not a performance figure: connect must not wait twice.
    assert time.monotonic() - start < 2.0
    hint = "; a Sawyer camera sends frames only once started: intera Cameras.start_streaming"
    assert str(err.value) == (
        f"ros:{topic}: no frame came on {topic} within 1 s "
        f"(the ROS master knows no publisher of it{hint if sawyer else ''})"
    )


@pytest.mark.ros
def test_a_silent_publisher_is_the_first_frame_timeout(
    ros: Any, topic: str, cameras: list, tmp_path: Path
) -> None:
    from sensor_msgs.msg import Image

    save_camera_info(tmp_path / "cam.yaml", INTR)
    pub = ros.Publisher(topic, Image, queue_size=1)
    try:
        cam = camera(cameras, topic, timeout_s=1.0, calibration=tmp_path / "cam.yaml")
        with pytest.raises(DriverError) as err:
            cam.connect()
    finally:
        pub.unregister()
    assert str(err.value) == f"ros:{topic}: no frame came on {topic} within 1 s"
    assert subscribers(topic) == []  # the failed connect unsubscribed


@pytest.mark.ros
def test_an_unsupported_encoding_is_counted_and_named(ros: Any, topic: str, cameras: list) -> None:
    def mono16(i: int) -> tuple[bytes, int, str]:
        return bytes(H * W * 2), W * 2, "mono16"

    with Stream(ros, topic, mono16, info=info_msg()):
        cam = camera(cameras, topic, timeout_s=1.0)
        with pytest.raises(DriverError) as err:
            cam.connect()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"ros:{topic}: no frame came on {topic} within 1 s (last error: ")
    assert "image encoding 'mono16' is not supported" in message
    assert cam.stats.errors >= 1 and cam.stats.frames == 0


@pytest.mark.ros
def test_disconnect_unsubscribes_and_stops_delivering(ros: Any, topic: str, cameras: list) -> None:
    with Stream(ros, topic, flat, info=info_msg()):
        cam = camera(cameras, topic)
        cam.connect()
        assert ros.get_name() in subscribers(topic)
        cam.disconnect()
        assert ros.get_name() not in subscribers(topic)
        after = cam.stats.frames
        time.sleep(0.3)  # 15 more messages published meanwhile
        assert cam.stats.frames == after
        cam.connect()  # and it comes back
        assert cam.wait_for_frames(after + 2) and ros.get_name() in subscribers(topic)
