"""Intel RealSense colour stream through librealsense's pipeline, live or from a recording.

A live camera and a recorded ``.db3``/``.bag`` file go through the same pipeline code;
only the config differs. The capture thread keeps the newest frame, drops the first
frames while auto-exposure settles, and restarts the pipeline with a growing pause
when frames stop (a USB drop-out), counting each restart in ``reconnects``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from grasprt.calibration.camera_info import load_camera_info
from grasprt.drivers.newest_frame import CaptureStats, EndOfStream, NewestFrame
from grasprt.errors import DriverError
from grasprt.runtime.clock import MonotonicClock
from grasprt.types import Clock, Frame, Intrinsics

log = logging.getLogger(__name__)

INSTALL_HINT = "pyrealsense2 is not installed: pip install 'grasprt[realsense]'"
RECORDING_SUFFIXES = (".db3", ".bag")

# A capture-to-arrival estimate outside 0..this is not believed (clocks not in step).
_MAX_LATENCY_S = 0.5
# Beyond this the fitted OpenCV distortion would mislead more than help.
_MAX_FIT_ERROR_PX = 2.0
# librealsense's colour formats and how to turn each into RGB (None: already RGB).
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
}


def import_pyrealsense2() -> ModuleType:
    """pyrealsense2, or a DriverError that says how to get it working."""
    try:
        import pyrealsense2
    except ImportError as e:
        if "libusb" in str(e):
            raise DriverError(
                "pyrealsense2 cannot load libusb-1.0: apt install libusb-1.0-0"
            ) from None
        raise DriverError(INSTALL_HINT) from None
    return pyrealsense2


# -- intrinsics ------------------------------------------------------------------------


def _fit_plumb_bob(undistorted: np.ndarray, distorted: np.ndarray) -> np.ndarray:
    """OpenCV (k1, k2, p1, p2, k3) that best send normalised ``undistorted`` to ``distorted``.

    OpenCV's forward model is linear in its coefficients once the undistorted point is
    known, so this is one least-squares solve.
    """
    x, y = undistorted[:, 0], undistorted[:, 1]
    r2 = x * x + y * y
    rows_x = np.stack([x * r2, x * r2**2, 2 * x * y, r2 + 2 * x * x, x * r2**3], 1)
    rows_y = np.stack([y * r2, y * r2**2, r2 + 2 * y * y, 2 * x * y, y * r2**3], 1)
    a = np.concatenate([rows_x, rows_y])
    b = np.concatenate([distorted[:, 0] - x, distorted[:, 1] - y])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _radial(points: np.ndarray, k: Sequence[float]) -> np.ndarray:
    r2 = (points**2).sum(1)
    return 1 + k[0] * r2 + k[1] * r2**2 + k[4] * r2**3


def _librealsense_distortion(points: np.ndarray, k: Sequence[float]) -> np.ndarray:
    """librealsense's forward (undistorted -> distorted) Brown-Conrady variant.

    librealsense 2.59 projects both ``modified_brown_conrady`` and
    ``inverse_brown_conrady`` points with this polynomial (rsutil.h), and its
    deprojection of ``inverse_brown_conrady`` inverts it. Unlike OpenCV, the tangential
    terms act on the radially scaled point.
    """
    r2 = (points**2).sum(1)
    x, y = points[:, 0] * _radial(points, k), points[:, 1] * _radial(points, k)
    dx = x + 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
    dy = y + 2 * k[3] * x * y + k[2] * (r2 + 2 * y * y)
    return np.stack([dx, dy], 1)


def intrinsics_from_realsense(
    width: int,
    height: int,
    fx: float,
    fy: float,
    ppx: float,
    ppy: float,
    model: str,
    coeffs: Sequence[float],
) -> Intrinsics:
    """librealsense intrinsics as :class:`Intrinsics` with OpenCV ``plumb_bob`` distortion.

    ``brown_conrady`` is OpenCV's model already. ``modified_brown_conrady`` and
    ``inverse_brown_conrady`` project with a slightly different polynomial, so OpenCV
    coefficients are fitted to it over the image (worst error logged, typically
    hundredths of a pixel). Fisheye models, and fits worse than a few pixels, raise
    ValueError: they have no faithful plumb_bob form.
    """
    k = [float(c) for c in coeffs][:5]
    k += [0.0] * (5 - len(k))
    if model == "none" or not any(k):
        return Intrinsics(width, height, fx, fy, ppx, ppy)
    if model == "brown_conrady":
        return Intrinsics(width, height, fx, fy, ppx, ppy, tuple(k))
    if model not in ("modified_brown_conrady", "inverse_brown_conrady"):
        raise ValueError(f"the {model} distortion model has no OpenCV plumb_bob equivalent")
    us, vs = np.meshgrid(np.linspace(0, width - 1, 33), np.linspace(0, height - 1, 25))
    undistorted = np.stack([(us.ravel() - ppx) / fx, (vs.ravel() - ppy) / fy], 1)
    distorted = _librealsense_distortion(undistorted, k)
    fitted = _fit_plumb_bob(undistorted, distorted)
    intr = Intrinsics(width, height, fx, fy, ppx, ppy, tuple(float(c) for c in fitted))
    projected, _ = cv2.projectPoints(
        np.column_stack([undistorted, np.ones(len(undistorted))]),
        np.zeros(3),
        np.zeros(3),
        intr.matrix(),
        np.array(intr.dist),
    )
    target = distorted * [fx, fy] + [ppx, ppy]
    error_px = float(np.abs(projected[:, 0, :] - target).max())
    if not error_px <= _MAX_FIT_ERROR_PX:
        raise ValueError(f"{model} distortion fits OpenCV's model only to {error_px:.3g} px")
    log.info("%s distortion as OpenCV plumb_bob: worst error %.3f px", model, error_px)
    return intr


# -- capture time ----------------------------------------------------------------------


def capture_stamp(
    arrival: float,
    arrival_system_ms: float,
    timestamp_ms: float,
    global_time: bool,
    metadata: Mapping[str, float],
) -> float:
    """Estimate when a frame was captured, on the clock ``arrival`` was read from.

    ``arrival_system_ms`` is the host's wall clock (ms) read together with ``arrival``.
    In the ``global_time`` domain the frame timestamp is already on that wall clock, so
    the age is a subtraction. Otherwise the metadata gives the kernel's arrival time
    (``backend_timestamp``, wall clock) and the exposure-to-readout delay
    (``frame_timestamp`` - ``sensor_timestamp``, µs on the device clock); failing that,
    librealsense's own arrival time. An age outside 0..0.5 s means clocks that are not
    in step (a recording played back later): then the arrival time stands.
    """
    ages_ms: list[float] = []
    if global_time:
        ages_ms.append(arrival_system_ms - timestamp_ms)
    if "backend_timestamp" in metadata:
        age = arrival_system_ms - metadata["backend_timestamp"]
        if "frame_timestamp" in metadata and "sensor_timestamp" in metadata:
            age += (metadata["frame_timestamp"] - metadata["sensor_timestamp"]) / 1000.0
        ages_ms.append(age)
    if "time_of_arrival" in metadata:
        ages_ms.append(arrival_system_ms - metadata["time_of_arrival"])
    for age_ms in ages_ms:
        if np.isfinite(age_ms) and 0.0 <= age_ms <= _MAX_LATENCY_S * 1000.0:
            return arrival - age_ms / 1000.0
    return arrival


# -- the camera ------------------------------------------------------------------------


class RealSenseCamera:
    """The colour stream of a RealSense camera (or of a recording of one).

    ``serial`` picks a camera (default: the only/first one); ``recording`` plays a
    ``.db3``/``.bag`` file instead, looped if ``loop``, at its recorded pace unless
    ``pace=False`` (as fast as frames are taken: tests, offline runs). The first
    ``settle_frames`` after each (re)start are dropped while auto-exposure settles.
    """

    def __init__(
        self,
        serial: str | None = None,
        *,
        recording: str | Path | None = None,
        width: int | None = None,
        height: int | None = None,
        fps: int | None = None,
        loop: bool = False,
        pace: bool = True,
        settle_frames: int | None = None,
        calibration: str | Path | None = None,
        clock: Clock | None = None,
        name: str | None = None,
        frame_timeout_s: float = 1.0,
        first_frame_timeout_s: float = 10.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        if serial is not None and recording is not None:
            raise DriverError("a RealSense camera takes a serial number or a recording, not both")
        self.serial = serial
        self.recording = Path(recording) if recording is not None else None
        live = self.recording is None
        # Live defaults: a mode every D400 colour sensor has, also over USB 2.
        self.width = width if width is not None else (640 if live else None)
        self.height = height if height is not None else (480 if live else None)
        self.fps = fps if fps is not None else (30 if live else None)
        self.loop = loop
        self.pace = pace
        self.settle_frames = settle_frames if settle_frames is not None else (15 if live else 0)
        self.name = name or (
            f"realsense:{self.recording}" if self.recording else f"realsense:{serial or ''}"
        ).rstrip(":")
        self._calibration_path = calibration
        self._clock: Clock = clock or MonotonicClock()
        self._wall_stamps_usable = clock is None or isinstance(clock, MonotonicClock)
        self._frame_timeout_ms = int(frame_timeout_s * 1000)
        self._first_frame_timeout_s = first_frame_timeout_s
        self._max_backoff_s = max_backoff_s
        self._backoff_s = 0.25
        self._rs: Any = None
        self._pipeline: Any = None
        self._config: Any = None
        self._playback: Any = None
        self._resolved: Any = None
        self._streaming = False
        self._restart_requested = False
        self._to_rgb: int | None = None
        self._intrinsics: Intrinsics | None = None
        self._capture = NewestFrame(self.name, self._grab)
        self._seq = 0
        self._to_settle = 0
        self.reconnects = 0
        self.device_info: dict[str, str] = {}

    # -- Camera --------------------------------------------------------------------

    @property
    def intrinsics(self) -> Intrinsics | None:
        return self._intrinsics

    def latest(self) -> Frame | None:
        return self._capture.latest()

    def connect(self) -> None:
        if self._capture.running:
            return
        self._rs = import_pyrealsense2()
        calibration = load_camera_info(self._calibration_path) if self._calibration_path else None
        self._config = self._make_config()
        self._pipeline = self._rs.pipeline()
        self._start_pipeline()
        if calibration is not None:
            self._intrinsics = calibration
        first = self._capture.start_first(
            self._first_frame_timeout_s,
            self.disconnect,
            ended=f"{self.name}: the recording has no colour frames",
            stalled=f"{self.name}: no colour frames within {self._first_frame_timeout_s:g} s "
            "of starting (try another USB 3 port or cable)",
        )
        h, w = first.image.shape[:2]
        if calibration is not None and (calibration.width, calibration.height) != (w, h):
            self.disconnect()
            raise DriverError(
                f"{self.name}: calibration {self._calibration_path} is for "
                f"{calibration.width}x{calibration.height} but the stream is {w}x{h}"
            )

    def disconnect(self) -> None:
        stopped = self._capture.stop()
        if stopped:
            self._stop_pipeline()

    # -- status --------------------------------------------------------------------

    @property
    def stats(self) -> CaptureStats:
        return self._capture.stats

    def wait_for_frame(self, after_seq: int = -1, timeout_s: float = 5.0) -> Frame | None:
        """Block for a frame newer than ``after_seq`` (tools and tests; the loop polls)."""
        return self._capture.wait_for_frame(after_seq, timeout_s)

    def wait_for_frames(self, count: int, timeout_s: float = 5.0) -> bool:
        return self._capture.wait_for_frames(count, timeout_s)

    def request_restart(self) -> None:
        """Have the capture thread restart the pipeline (as it does when frames stop)."""
        self._restart_requested = True

    # -- pipeline ------------------------------------------------------------------

    def _make_config(self) -> Any:
        rs = self._rs
        config = rs.config()
        if self.recording is not None:
            if not self.recording.is_file():
                raise DriverError(f"no such RealSense recording: {self.recording}")
            config.enable_device_from_file(str(self.recording), repeat_playback=self.loop)
            config.enable_stream(
                rs.stream.color, self.width or 0, self.height or 0, rs.format.any, self.fps or 0
            )
            return config
        found = self._connected_serials()
        if self.serial is None:
            if not found:
                raise DriverError(
                    "no RealSense device found (is it on a USB 3 port? `grasprt devices` lists "
                    "what is connected)"
                )
            # Keep to this camera across reconnects, even if another is plugged in later.
            self.serial = found[0]
        elif self.serial not in found:
            raise DriverError(
                f"no RealSense device with serial {self.serial} "
                f"(found: {', '.join(found) if found else 'none'})"
            )
        config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        return config

    def _connected_serials(self) -> list[str]:
        rs = self._rs
        try:
            devices = rs.context().query_devices()
            return [d.get_info(rs.camera_info.serial_number) for d in devices]
        except RuntimeError as e:
            raise DriverError(f"librealsense cannot list devices: {e}") from None

    def _start_pipeline(self) -> None:
        rs = self._rs
        try:
            if self._playback_fast():
                # Playback starts in real time and drops frames until told otherwise, so
                # switch the resolved device over before the pipeline starts it; the
                # pipeline then uses this very device (kept alive in self._resolved).
                self._resolved = self._config.resolve(rs.pipeline_wrapper(self._pipeline))
                self._resolved.get_device().as_playback().set_real_time(False)
            profile = self._pipeline.start(self._config)
        except RuntimeError as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            if self.recording is not None:
                raise DriverError(f"cannot play {self.recording}: {message}") from None
            raise DriverError(
                f"RealSense {self.serial} cannot stream colour {self.width}x{self.height}"
                f"@{self.fps} rgb8 ({message}); modes it has: {self._colour_modes()}"
            ) from None
        self._streaming = True
        device = profile.get_device()
        self._playback = device.as_playback() if device.is_playback() else None
        if self._playback is not None:
            self._playback.set_real_time(self.pace)
        else:
            self._tune_colour_sensor(device)
        self.device_info = device_info(rs, device)
        usb = self.device_info.get("usb_type", "")
        if usb.startswith("2"):
            log.warning("%s: connected as USB %s: use a USB 3 port and cable", self.name, usb)
        stream = profile.get_stream(rs.stream.color).as_video_stream_profile()
        fmt = str(stream.format()).rsplit(".", 1)[-1]
        if fmt not in _TO_RGB:
            self._stop_pipeline()
            raise DriverError(
                f"{self.name}: colour format {fmt} is not supported ({', '.join(_TO_RGB)} are)"
            )
        self._to_rgb = _TO_RGB[fmt]
        if self._calibration_path is None:
            self._intrinsics = self._stream_intrinsics(stream)
        self._to_settle = self.settle_frames
        log.info(
            "%s: %s %s, colour %dx%d@%d %s",
            self.name,
            self.device_info.get("name", "RealSense"),
            self.device_info.get("serial", ""),
            stream.width(),
            stream.height(),
            stream.fps(),
            fmt,
        )

    def _playback_fast(self) -> bool:
        return self.recording is not None and not self.pace

    def _stream_intrinsics(self, stream: Any) -> Intrinsics:
        i = stream.get_intrinsics()
        model = str(i.model).rsplit(".", 1)[-1]
        try:
            return intrinsics_from_realsense(
                i.width, i.height, i.fx, i.fy, i.ppx, i.ppy, model, list(i.coeffs)
            )
        except ValueError as e:
            self._stop_pipeline()
            raise DriverError(f"{self.name}: {e}; pass a calibration file") from None

    def _tune_colour_sensor(self, device: Any) -> None:
        rs = self._rs
        settings = (
            # Frame timestamps on the host clock: what capture_stamp needs.
            (rs.option.global_time_enabled, 1.0),
            (rs.option.enable_auto_exposure, 1.0),
            # With priority on, auto-exposure lowers the frame rate in dim light.
            (rs.option.auto_exposure_priority, 0.0),
        )
        for sensor in device.query_sensors():
            if not sensor.is_color_sensor():
                continue
            for option, value in settings:
                try:
                    if sensor.supports(option) and not sensor.is_option_read_only(option):
                        sensor.set_option(option, value)
                except RuntimeError as e:
                    log.warning("%s: cannot set %s: %s", self.name, option, e)

    def _colour_modes(self) -> str:
        rs = self._rs
        try:
            for device in rs.context().query_devices():
                if device.get_info(rs.camera_info.serial_number) != self.serial:
                    continue
                modes = sorted(
                    {
                        (
                            p.as_video_stream_profile().width(),
                            p.as_video_stream_profile().height(),
                            p.fps(),
                        )
                        for s in device.query_sensors()
                        for p in s.get_stream_profiles()
                        if p.stream_type() == rs.stream.color and p.format() == rs.format.rgb8
                    }
                )
                return ", ".join(f"{w}x{h}@{f}" for w, h, f in modes) or "none"
        except RuntimeError:
            pass
        return "unknown"

    def _stop_pipeline(self) -> None:
        if self._streaming and self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError as e:  # a vanished device may refuse; it is stopped anyway
                log.debug("%s: pipeline stop: %s", self.name, e)
        self._streaming = False
        self._resolved = None

    # -- the capture thread --------------------------------------------------------

    def _grab(self) -> Frame | None:
        if self._restart_requested or not self._streaming:
            return self._restart()
        try:
            # A recording's end shows only as a timeout: keep those short for playback.
            timeout_ms = self._frame_timeout_ms if self._playback is None else 200
            ok, frames = self._pipeline.try_wait_for_frames(timeout_ms)
        except RuntimeError as e:
            log.warning("%s: %s", self.name, e)
            ok, frames = False, None
        if not ok:
            if self._playback is not None:
                if self._playback.current_status() == self._rs.playback_status.stopped:
                    raise EndOfStream("end of recording")
                return None
            log.warning("%s: no frame for %d ms, restarting", self.name, self._frame_timeout_ms)
            self._restart_requested = True
            return None
        arrival = self._clock.now()
        arrival_system_ms = time.time() * 1000.0
        colour = frames.get_color_frame()
        if not colour:
            return None
        if self._to_settle > 0:
            self._to_settle -= 1
            return None
        data = np.asanyarray(colour.get_data())
        # The array views librealsense's buffer, which it reuses: convert or copy now.
        image = data.copy() if self._to_rgb is None else cv2.cvtColor(data, self._to_rgb)
        timestamp_ms = float(colour.get_timestamp())
        stamp = arrival
        if self._wall_stamps_usable and self._playback is None:
            global_time = (
                colour.get_frame_timestamp_domain() == self._rs.timestamp_domain.global_time
            )
            stamp = capture_stamp(
                arrival, arrival_system_ms, timestamp_ms, global_time, _metadata(self._rs, colour)
            )
        self._seq += 1
        return Frame(image, stamp, self._seq, device_stamp=timestamp_ms / 1000.0)

    def _restart(self) -> None:
        self._stop_pipeline()
        if not self._capture.sleep(self._backoff_s):
            return None
        try:
            self._start_pipeline()
        except DriverError:
            self._backoff_s = min(self._backoff_s * 2.0, self._max_backoff_s)
            raise
        self._restart_requested = False
        self._backoff_s = 0.25
        self.reconnects += 1
        log.warning("%s: pipeline restarted (%d so far)", self.name, self.reconnects)
        return None


_METADATA = ("backend_timestamp", "time_of_arrival", "frame_timestamp", "sensor_timestamp")


def _metadata(rs: Any, frame: Any) -> dict[str, float]:
    values: dict[str, float] = {}
    for key in _METADATA:
        field = getattr(rs.frame_metadata_value, key)
        if frame.supports_frame_metadata(field):
            values[key] = float(frame.get_frame_metadata(field))
    return values


def device_info(rs: Any, device: Any) -> dict[str, str]:
    fields = {
        "name": rs.camera_info.name,
        "serial": rs.camera_info.serial_number,
        "firmware": rs.camera_info.firmware_version,
        "usb_type": rs.camera_info.usb_type_descriptor,
        "product_line": rs.camera_info.product_line,
        "physical_port": rs.camera_info.physical_port,
    }
    return {key: device.get_info(info) for key, info in fields.items() if device.supports(info)}
