"""Cameras read through OpenCV: UVC/V4L2 webcams, video files, GStreamer pipelines.

The frames are RGB copies (OpenCV decodes to BGR). Intrinsics are whatever the
calibration file says; OpenCV knows nothing of a camera's optics.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from grasprt.drivers.capture_camera import CaptureCamera, CaptureSettings, EndOfStream
from grasprt.errors import DriverError
from grasprt.types import Frame

if TYPE_CHECKING:
    from grasprt.drivers.factory import CameraSpec

log = logging.getLogger(__name__)

SourceKind = Literal["device", "file", "gstreamer"]

# A V4L2 buffer stamp older than this is not believed (a clock other than monotonic).
_MAX_BUFFER_AGE_S = 0.5
# read() on a V4L2 device otherwise waits 10 s for a frame from an unplugged camera.
_READ_TIMEOUT_MS = 1000
_DEFAULT_FILE_FPS = 30.0


def opencv_has_gstreamer() -> bool:
    match = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
    return bool(match and match.group(1).upper().startswith("YES"))


def v4l2_capture_stamp(arrival: float, buffer_ms: float) -> float:
    """The capture time of a V4L2 frame on ``time.monotonic``'s clock.

    uvcvideo stamps each buffer with CLOCK_MONOTONIC when the frame starts arriving,
    which is what ``time.monotonic`` reads; OpenCV reports it as ``CAP_PROP_POS_MSEC``.
    Drivers that stamp with another clock give values far from ``arrival``; then the
    arrival time is the best estimate left.
    """
    stamp = buffer_ms / 1000.0
    if np.isfinite(stamp) and 0.0 <= arrival - stamp <= _MAX_BUFFER_AGE_S:
        return stamp
    return arrival


def _device_index(path: str) -> int | None:
    """``/dev/video2`` or a ``/dev/v4l/by-id`` link to it -> 2."""
    match = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(path))
    return int(match.group(1)) if match else None


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class OpenCVCamera(CaptureCamera):
    """A :class:`grasprt.types.Camera` on ``cv2.VideoCapture``.

    ``kind`` says what ``source`` is: ``"device"`` (a V4L2 index such as ``"0"`` or a
    path such as ``/dev/video2`` or ``/dev/v4l/by-id/...``), ``"file"`` (a video file,
    played at its own frame rate unless ``settings.pace`` is False, looped if
    ``settings.loop``) or ``"gstreamer"`` (a pipeline ending in ``appsink``). The
    settings' ``width``/``height``/``fps`` and ``fourcc`` are requests to a device; what
    it really gives is in ``actual_*``. A device reopens after ``reopen_after_failures``
    failed reads in a row (a replugged camera).
    """

    default_first_frame_timeout_s = 5.0

    def __init__(
        self,
        source: str,
        settings: CaptureSettings | None = None,
        *,
        kind: SourceKind = "device",
        fourcc: str | None = None,
        reopen_after_failures: int = 5,
    ) -> None:
        if fourcc is not None and len(fourcc) != 4:
            raise DriverError(f"fourcc must be 4 characters (e.g. MJPG), got {fourcc!r}")
        self.source = source
        self.kind: SourceKind = kind
        self.fourcc = fourcc
        super().__init__(
            (settings or CaptureSettings()).or_defaults(
                name=f"gst:{source}" if kind == "gstreamer" else f"opencv:{source}",
                # Webcams come up with auto-exposure still hunting; files and pipelines do not.
                settle_frames=5 if kind == "device" else 0,
            )
        )
        self._reopen_after_failures = reopen_after_failures
        self._cap: cv2.VideoCapture | None = None
        self._failures = 0
        self._pace_start = 0.0
        self._pace_count = 0
        self._since_rewind = 0
        self.actual_width = 0
        self.actual_height = 0
        self.actual_fps = 0.0

    # -- CaptureCamera hooks -------------------------------------------------------

    def _open(self) -> None:
        # OpenCV knows nothing of the optics: the intrinsics come from the calibration alone.
        self._cap = self._open_capture()

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _no_first_frame(self, timeout_s: float) -> tuple[str, str]:
        return "the video has no frames", f"opened, but no frame came within {timeout_s:g} s"

    # -- opening -------------------------------------------------------------------

    def _open_capture(self) -> cv2.VideoCapture:
        if self.kind == "gstreamer":
            if not opencv_has_gstreamer():
                raise DriverError(
                    "this OpenCV was built without GStreamer (pip's opencv-python wheels never "
                    "have it): use a distro build (apt install python3-opencv) or opencv:DEVICE"
                )
            cap = cv2.VideoCapture(self.source, cv2.CAP_GSTREAMER)
            if not cap.isOpened():
                raise DriverError(f"cannot open GStreamer pipeline: {self.source}")
        elif self.kind == "file":
            path = Path(self.source)
            if not path.is_file():
                raise DriverError(f"no such video file: {self.source}")
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
            if not cap.isOpened():
                raise DriverError(
                    f"cannot open video file {self.source} (not a video FFmpeg reads)"
                )
        else:
            cap = self._open_device()
        self._read_actual(cap)
        self._failures = 0
        self._pace_start, self._pace_count, self._since_rewind = time.monotonic(), 0, 0
        return cap

    def _open_device(self) -> cv2.VideoCapture:
        path = f"/dev/video{self.source}" if self.source.isdigit() else self.source
        if not os.path.exists(path):
            raise DriverError(f"cannot open {path}: no such device (`grasprt devices` lists them)")
        if not os.access(path, os.R_OK | os.W_OK):
            raise DriverError(f"cannot open {path}: permission denied (add the user to 'video')")
        index = _device_index(path)
        # OpenCV's V4L2 backend opens reliably by index; a by-id link resolves to one.
        cap = (
            cv2.VideoCapture(index, cv2.CAP_V4L2)
            if index is not None
            else cv2.VideoCapture(path, cv2.CAP_V4L2)
        )
        if not cap.isOpened():
            raise DriverError(f"cannot open {path} (in use by another program, or not a camera)")
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        # One driver buffer: a frame waiting in a deep queue is an old frame.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, _READ_TIMEOUT_MS)
        return cap

    def _read_actual(self, cap: cv2.VideoCapture) -> None:
        self.actual_width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.actual_height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.actual_fps = float(cap.get(cv2.CAP_PROP_FPS))
        asked = f"{self.width or '?'}x{self.height or '?'}@{self.fps or '?'}"
        got = f"{self.actual_width}x{self.actual_height}@{self.actual_fps:g}"
        requested = any((self.width, self.height, self.fps))
        if self.kind == "device" and requested and asked != got:
            log.warning("%s: asked for %s, the camera gives %s", self.name, asked, got)
        else:
            log.info("%s: %s", self.name, got)

    # -- the capture thread --------------------------------------------------------

    def _grab(self) -> Frame | None:
        cap = self._cap
        if cap is None:
            if self.kind == "file":
                raise EndOfStream("closed")
            # A failed reopen raises; the capture thread retries with a growing pause.
            self._cap = self._open_capture()
            self._restart_settle()
            self.reconnects += 1
            log.warning("%s: reopened", self.name)
            return None
        if self.kind == "file" and self.pace:
            fps = self.actual_fps if self.actual_fps > 0 else _DEFAULT_FILE_FPS
            due = self._pace_start + self._pace_count / fps
            if not self._sleep(due - time.monotonic()):
                return None
        ok, image = cap.read()
        arrival = self._clock.now()
        if not ok or image is None:
            return self._on_read_failure(cap)
        self._failures = 0
        self._pace_count += 1
        self._since_rewind += 1
        position_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
        stamp = arrival
        # Buffer stamps are on time.monotonic; they only mean something on that clock.
        if self.kind == "device" and self._stamps_on_monotonic:
            stamp = v4l2_capture_stamp(arrival, position_ms)
        return Frame(_to_rgb(image), stamp, 0, device_stamp=position_ms / 1000.0)  # seq: the base's

    def _on_read_failure(self, cap: cv2.VideoCapture) -> None:
        if self.kind == "file":
            if not self.loop or self._since_rewind == 0:
                raise EndOfStream("end of file")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._pace_start, self._pace_count, self._since_rewind = time.monotonic(), 0, 0
            return None
        self._failures += 1
        if self._failures >= self._reopen_after_failures:
            # An unplugged-and-replugged UVC camera (or a dropped stream) only works again
            # once reopened.
            cap.release()
            self._cap = None
        raise DriverError(f"{self.name}: read failed ({self._failures} in a row)")


def from_spec(spec: CameraSpec, settings: CaptureSettings) -> OpenCVCamera:
    """The camera a parsed `--camera opencv:...` names (drivers/factory.py)."""
    kind = "file" if spec.is_file else "device"
    return OpenCVCamera(spec.target, settings, kind=kind, fourcc=spec.fourcc)


def from_gst_spec(spec: CameraSpec, settings: CaptureSettings) -> OpenCVCamera:
    """`--camera gst:PIPELINE`: a pipeline sets its own mode and takes no options."""
    return OpenCVCamera(spec.target, settings, kind="gstreamer")
