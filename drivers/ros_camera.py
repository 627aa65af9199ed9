"""Cameras on ROS topics: ``--camera ros:TOPIC`` (a ``sensor_msgs/Image`` topic).

Any ROS 1 camera works: the Sawyer's hand camera
(``/io/internal_camera/right_hand_camera/image_raw``) or a realsense2_camera stream
(``/camera/color/image_raw``). rospy is imported only when the camera connects, through
:mod:`grasprt.drivers.ros_node`, so this module imports anywhere.

* **Frames**: rgb8, bgr8, rgba8, bgra8 and mono8 are decoded from ``msg.data`` with
  numpy and cv2 (no cv_bridge: it is built for one Python and one OpenCV), honouring
  the row padding ``step`` allows. Any other encoding is counted as an error, and when no
  frame ever decodes the first-frame error names it. The subscription keeps one
  message (``queue_size=1``) with a socket buffer larger than any frame, so rospy drops
  stale frames instead of queueing them in the socket; the base keeps only the newest.
* **Intrinsics**: from one ``CameraInfo`` on ``<topic's namespace>/camera_info``, waited
  for at connect; with ``--calibration`` that file's are used and the CameraInfo is not
  waited for (the base lets the file override the stream anyway). Neither: one
  DriverError naming both.
* **Stamps**: ``header.stamp`` is ROS time, the publisher's wall clock; the loop runs
  on ``settings.clock`` (``time.monotonic``). At every receipt the driver reads the loop
  clock, ROS time, the loop clock again, and takes ``offset = loop - ros`` from the
  middle of the pair when the two loop reads are under 50 µs apart (here: 3.6 µs
  median, 17 µs at the 99th percentile; a pair split by a preemption or a GIL switch
  is skipped, unless the estimate is a second old). The newest such sample is used:
  reading two clocks of this machine is exact to microseconds, so filtering would only
  add lag, and the newest sample follows an NTP step or slew of the wall clock at
  once. ``stamp = header + offset``. A minimum-latency estimate (the least
  ``receipt - header``) was not used: it would fold the camera's exposure-to-publish
  latency, which the header stamp exists to convey, into the offset. The offset
  assumes the publisher's wall clock is this machine's (the same PC, or one kept in
  step by NTP/chrony, as a ROS network needs): a frame whose stamp maps outside 0..0.5 s
  before its receipt shows clocks not in step, and is stamped on receipt instead, with
  a warning once. A zero stamp (the publisher sets none) is stamped on receipt too,
  said once. ``clock_offset_s`` and :meth:`RosCamera.describe` report the offset so a
  recording can keep it.
* **Connect**: the topic's type is asked of the master before subscribing (waiting up
  to the first-frame timeout for the topic to appear): another type is one DriverError
  line, a topic that never appears is the same first-frame error a silent one gets.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from grasprt.calibration.camera_info import check_distortion
from grasprt.drivers.capture_camera import CaptureCamera, CaptureSettings, CaptureStats
from grasprt.drivers.ros_node import ensure_node
from grasprt.errors import ConfigError, DriverError
from grasprt.types import Frame, Intrinsics

if TYPE_CHECKING:
    from grasprt.drivers.factory import CameraSpec

log = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/Image"
# encoding -> (bytes per pixel, the OpenCV conversion to RGB; None: a plain copy).
# cv2 rather than numpy indexing: 0.2 ms for a 1280x720 frame instead of 3-5 ms.
ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}
# rospy reads up to this much per recv(): more than a frame (1280x720 rgb8 is 2.6 MiB,
# 2560x2048 15 MiB), so frames that piled up in the socket come in one read and all but
# the newest are dropped there, instead of being handed over one by one, late.
BUFF_SIZE = 2**24
INFO_TIMEOUT_S = 2.0
# A stamp that maps further back than this, or into the future, means the publisher's
# clock is not this machine's (realsense.py uses the same bound for its stamps).
MAX_LATENCY_S = 0.5
# A future stamp within this of the receipt is NTP jitter, not worth a warning.
_FUTURE_TOLERANCE_S = 0.005
# The two loop-clock reads around a ROS-time read must be this close to trust the pair,
# unless the offset in use is older than _PAIR_MAX_AGE_S (a machine too busy for tight
# pairs still follows its wall clock).
_PAIR_WINDOW_S = 50e-6
_PAIR_MAX_AGE_S = 1.0
_TOPIC_POLL_S = 0.05


class UnsupportedEncoding(ValueError):
    """An image encoding this driver does not decode."""


# -- pure conversions (no ROS) ---------------------------------------------------------


def image_to_rgb(data: bytes, height: int, width: int, step: int, encoding: str) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB copy of a ``sensor_msgs/Image``'s pixels.

    ``step`` is the row length in bytes, which may exceed ``width`` pixels (padding);
    8-bit encodings need no byte-order handling.
    """
    layout = ENCODINGS.get(encoding)
    if layout is None:
        known = ", ".join(ENCODINGS)
        raise UnsupportedEncoding(f"image encoding {encoding!r} is not supported (use {known})")
    channels, conversion = layout
    row = width * channels
    if height <= 0 or width <= 0:
        raise ValueError(f"empty image ({width}x{height})")
    if step < row:
        raise ValueError(f"step {step} is shorter than a row of {width} {encoding} pixels")
    if len(data) < step * height:
        raise ValueError(f"{len(data)} bytes of data for {height} rows of {step} bytes")
    rows = np.frombuffer(data, np.uint8, count=step * height).reshape(height, step)
    pixels = rows[:, :row].reshape(height, width, channels)
    # Both copy: the frame must not share the message's read-only buffer.
    if conversion is None:
        return pixels.copy()
    return cv2.cvtColor(pixels[:, :, 0] if channels == 1 else pixels, conversion)


def info_topic_for(image_topic: str) -> str:
    """The CameraInfo topic beside an image topic (``/ns/image_raw`` -> ``/ns/camera_info``)."""
    namespace, slash, _ = image_topic.rpartition("/")
    return f"{namespace}{slash}camera_info"


def intrinsics_from_camera_info(info: Any, source: str = "CameraInfo") -> Intrinsics:
    """:class:`Intrinsics` from a ``sensor_msgs/CameraInfo`` (or anything with its fields).

    Binning and a region of interest give the intrinsics of the image as published,
    as image_geometry's PinholeCameraModel does. ConfigError (naming ``source``) for an
    uncalibrated camera (K all zero) or a distortion model OpenCV cannot apply.
    """
    k = [float(v) for v in info.K]
    dist = tuple(float(v) for v in info.D)
    width, height = int(info.width), int(info.height)
    if len(k) != 9 or not all(math.isfinite(v) for v in (*k, *dist)):
        raise ConfigError(f"{source}: K must be 9 finite numbers and D finite")
    if k[0] <= 0 or k[4] <= 0 or width <= 0 or height <= 0:
        raise ConfigError(f"{source}: the camera is not calibrated (K or the size is zero)")
    check_distortion(info.distortion_model, dist, Path(source))
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    roi = getattr(info, "roi", None)
    if roi is not None and roi.width and roi.height:
        cx, cy = cx - roi.x_offset, cy - roi.y_offset
        width, height = int(roi.width), int(roi.height)
    bx, by = int(getattr(info, "binning_x", 0)) or 1, int(getattr(info, "binning_y", 0)) or 1
    return Intrinsics(
        width // bx, height // by, fx / bx, fy / by, cx / bx, cy / by, dist if any(dist) else ()
    )


# Why a frame was stamped on receipt instead of by its header (said once each).
NO_STAMP = "the publisher sets no header stamps"
NO_ROS_TIME = "ROS time is not running yet (use_sim_time without /clock)"
CLOCKS_APART = "the publisher's clock is not this machine's (sync it with NTP/chrony)"


def loop_stamp(header_s: float, arrival: float, offset: float | None) -> tuple[float, str | None]:
    """A frame's capture time on the loop clock, and why the arrival stood in, if it did.

    ``header_s`` is the header stamp (ROS seconds), ``arrival`` the loop-clock receipt
    time, ``offset`` loop clock minus ROS time (None: ROS time not running yet).
    """
    if header_s == 0.0:
        return arrival, NO_STAMP
    if offset is None:
        return arrival, NO_ROS_TIME
    stamp = header_s + offset
    age = arrival - stamp
    if 0.0 <= age <= MAX_LATENCY_S:
        return stamp, None
    if -_FUTURE_TOLERANCE_S <= age < 0.0:
        return arrival, None  # a hair in the future (NTP jitter): the receipt is as good
    return arrival, CLOCKS_APART


# -- the camera ------------------------------------------------------------------------


class RosCamera(CaptureCamera):
    """A :class:`grasprt.types.Camera` subscribing to a ``sensor_msgs/Image`` topic.

    ``topic`` is a global (``/io/...``) or relative ROS name, resolved against the
    node's namespace at connect. ``info_timeout_s`` bounds the wait for a CameraInfo.
    """

    push = True

    def __init__(
        self,
        topic: str,
        settings: CaptureSettings | None = None,
        *,
        info_timeout_s: float = INFO_TIMEOUT_S,
    ) -> None:
        super().__init__((settings or CaptureSettings()).or_defaults(name=f"ros:{topic}"))
        self.topic = topic  # resolved at connect
        self.info_timeout_s = info_timeout_s
        self._rospy: Any = None
        self._sub: Any = None
        # rospy calls back from one thread per publisher connection: one frame at a time.
        self._callback_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._intrinsics_from: str | None = None
        self._offset: float | None = None
        self._offset_at = -math.inf  # when (loop clock) the offset was sampled
        self._latency: float | None = None
        self._size: tuple[int, int] | None = None
        self._encoding: str | None = None
        self._stamped_on_receipt = False
        self._errors = 0
        self._last_error: str | None = None
        self._said: set[str] = set()

    # -- reporting -----------------------------------------------------------------

    @property
    def info_topic(self) -> str:
        return info_topic_for(self.topic)

    @property
    def clock_offset_s(self) -> float | None:
        """Loop clock minus ROS time, as last measured (None before connect)."""
        return self._offset

    @property
    def stats(self) -> CaptureStats:
        # Decoding errors happen in the callback, not in a grab(): add them here.
        base = super().stats
        with self._status_lock:
            return replace(
                base,
                errors=base.errors + self._errors,
                last_error=self._last_error or base.last_error,
            )

    def describe(self) -> dict[str, Any]:
        """What a record should keep of this camera: topic, optics source, clock offset."""
        stats = self.stats
        return {
            "topic": self.topic,
            "type": IMAGE_TYPE,
            "encoding": self._encoding,
            "size": list(self._size) if self._size else None,
            "intrinsics_from": self._intrinsics_from,
            "clock_offset_s": self._offset,
            "latency_s": self._latency,
            "stamps": "receipt" if self._stamped_on_receipt else "header",
            "frames": stats.frames,
            "drops": stats.drops,
            "errors": stats.errors,
            "last_error": stats.last_error,
        }

    # -- CaptureCamera -------------------------------------------------------------

    def connect(self) -> None:
        super().connect()
        self._check_info_size()

    def _open(self) -> Intrinsics | None:
        rospy = self._rospy = ensure_node()
        self.topic = rospy.resolve_name(self.topic)
        self._check_topic_type(rospy)
        own = None
        if self.settings.calibration:
            self._intrinsics_from = f"calibration {self.settings.calibration}"
        else:
            own = self._camera_info(rospy)
            self._intrinsics_from = f"CameraInfo {self.info_topic}"
        self._sample_offset(rospy)
        from sensor_msgs.msg import Image

        self._sub = rospy.Subscriber(
            self.topic,
            Image,
            self._on_image,
            queue_size=1,
            buff_size=BUFF_SIZE,
            tcp_nodelay=True,
        )
        return own

    def _close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.unregister()

    def _no_first_frame(self, timeout_s: float) -> tuple[str, str]:
        ended, _ = super()._no_first_frame(timeout_s)
        return ended, self._stalled(timeout_s)

    # -- connecting ----------------------------------------------------------------

    def _stalled(self, timeout_s: float, why: str = "") -> str:
        with self._status_lock:
            error = self._last_error
        details = [why or (f"last error: {error}" if error else ""), self._sawyer_hint()]
        detail = "; ".join(d for d in details if d)
        return f"no frame came on {self.topic} within {timeout_s:g} s" + (
            f" ({detail})" if detail else ""
        )

    def _sawyer_hint(self) -> str:
        # Intera advertises its cameras' topics but sends nothing until told to stream.
        if not self.topic.startswith("/io/internal_camera/"):
            return ""
        return "a Sawyer camera sends frames only once started: intera Cameras.start_streaming"

    def _check_topic_type(self, rospy: Any) -> None:
        """Refuse a topic of another type; wait (first-frame timeout) for one not yet there."""
        timeout_s = self.first_frame_timeout_s
        deadline = time.monotonic() + timeout_s
        while (kind := self._published_type(rospy)) is None:
            if time.monotonic() >= deadline:
                raise DriverError(
                    f"{self.name}: "
                    + self._stalled(timeout_s, "the ROS master knows no publisher of it")
                )
            time.sleep(_TOPIC_POLL_S)
        if kind != IMAGE_TYPE:
            raise DriverError(
                f"{self.name}: {self.topic} carries {kind}, not {IMAGE_TYPE} "
                "(give a raw image topic, e.g. .../image_raw)"
            )

    def _published_type(self, rospy: Any) -> str | None:
        try:
            topics = rospy.get_published_topics()
        except (OSError, rospy.ROSException) as e:
            raise DriverError(
                f"{self.name}: the ROS master did not list its topics ({e})"
            ) from None
        return dict(topics).get(self.topic)

    def _camera_info(self, rospy: Any) -> Intrinsics:
        from sensor_msgs.msg import CameraInfo

        topic = self.info_topic
        advice = "publish it, or give the camera's intrinsics with --calibration FILE.yaml"
        if hint := self._sawyer_hint():
            advice += f" ({hint})"
        try:
            info = rospy.wait_for_message(topic, CameraInfo, timeout=self.info_timeout_s)
        except rospy.ROSException:
            raise DriverError(
                f"{self.name}: no CameraInfo on {topic} within {self.info_timeout_s:g} s: {advice}"
            ) from None
        try:
            return intrinsics_from_camera_info(info, topic)
        except ConfigError as e:
            raise DriverError(f"{self.name}: {e}: give --calibration FILE.yaml") from None

    def _check_info_size(self) -> None:
        """The CameraInfo's size must be the stream's (the base checks a calibration's)."""
        intr = self._intrinsics
        if self.settings.calibration or intr is None or self._size is None:
            return
        if (intr.width, intr.height) != self._size:
            self.disconnect()
            raise DriverError(
                f"{self.name}: CameraInfo on {self.info_topic} is for {intr.width}x"
                f"{intr.height} but the stream is {self._size[0]}x{self._size[1]}"
            )

    # -- receiving -----------------------------------------------------------------

    def _sample_offset(self, rospy: Any) -> float:
        """Read loop, ROS, loop time; keep ``loop - ros`` if the pair was tight. -> arrival."""
        before = self._clock.now()
        ros_now = rospy.get_time()
        after = self._clock.now()
        if ros_now == 0.0:  # sim time before /clock: there is nothing to map yet
            self._offset = None
        elif after - before <= _PAIR_WINDOW_S or before - self._offset_at > _PAIR_MAX_AGE_S:
            self._offset, self._offset_at = (before + after) / 2.0 - ros_now, before
        return before

    def _on_image(self, msg: Any) -> None:
        with self._callback_lock:
            arrival = self._sample_offset(self._rospy)
            try:
                image = image_to_rgb(msg.data, msg.height, msg.width, msg.step, msg.encoding)
            except ValueError as e:
                self._count_error(str(e))
                return
            header_s = msg.header.stamp.to_sec()
            stamp, why = loop_stamp(header_s, arrival, self._offset)
            if why is not None:
                seen = f" (a stamp {arrival - header_s - (self._offset or 0.0):+.3f} s old)"
                detail = seen if why == CLOCKS_APART else ""
                self._say_once(why, f"{detail}: frames are stamped on receipt")
            self._stamped_on_receipt = why is not None
            self._latency = arrival - stamp if why is None else None
            self._encoding, self._size = msg.encoding, (msg.width, msg.height)
            device_stamp = header_s if header_s else None
            self._deliver(Frame(image, stamp, 0, device_stamp=device_stamp))  # seq: the base's

    def _count_error(self, message: str) -> None:
        with self._status_lock:
            self._errors += 1
            self._last_error = message
        self._say_once(message)

    def _say_once(self, reason: str, detail: str = "") -> None:
        # Once per distinct reason: a wrong encoding at 30 Hz is one line, not a flood.
        if reason in self._said:
            return
        self._said.add(reason)
        log.warning("%s: %s%s", self.name, reason, detail)


def from_spec(spec: CameraSpec, settings: CaptureSettings) -> RosCamera:
    """The camera a parsed `--camera ros:TOPIC` names (drivers/factory.py)."""
    if spec.width is not None or spec.fps is not None:
        raise ConfigError(
            f"bad camera spec {settings.name or spec.target!r}: a ROS topic has its own "
            "size and rate: drop the @WxH"
        )
    assert spec.target is not None  # the factory's check refuses `ros` without a topic
    return RosCamera(spec.target, settings)
