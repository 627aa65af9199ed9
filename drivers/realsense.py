"""Intel RealSense colour stream through librealsense's pipeline, live or from a recording.

A live camera and a recorded ``.db3``/``.bag`` file go through the same pipeline code;
only the config differs. The capture thread keeps the newest frame, drops the first
frames while auto-exposure settles, and restarts the pipeline with a growing pause
when frames stop (a USB drop-out), counting each restart in ``reconnects``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from grasprt.calibration.realsense_intrinsics import (  # noqa: F401 (the driver's API)
    INSTALL_HINT,
    import_pyrealsense2,
    intrinsics_from_realsense,
)
from grasprt.drivers.capture_camera import CaptureCamera, CaptureSettings, EndOfStream
from grasprt.errors import DriverError
from grasprt.types import Frame, Intrinsics

if TYPE_CHECKING:
    from grasprt.drivers.factory import CameraSpec

log = logging.getLogger(__name__)

# A capture-to-arrival estimate outside 0..this is not believed (clocks not in step).
_MAX_LATENCY_S = 0.5
# librealsense's colour formats and how to turn each into RGB (None: already RGB).
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
}


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


class RealSenseCamera(CaptureCamera):
    """The colour stream of a RealSense camera (or of a recording of one).

    ``serial`` picks a camera (default: the only/first one); ``recording`` plays a
    ``.db3``/``.bag`` file instead, looped if ``settings.loop``, at its recorded pace
    unless ``settings.pace`` is False (as fast as frames are taken: tests, offline runs).
    The first ``settle_frames`` after each (re)start are dropped while auto-exposure
    settles. A live stream with no frame for ``frame_timeout_s`` is restarted, after a
    pause that doubles up to ``max_backoff_s`` while restarts fail.
    """

    default_first_frame_timeout_s = 10.0

    def __init__(
        self,
        serial: str | None = None,
        settings: CaptureSettings | None = None,
        *,
        recording: str | Path | None = None,
        frame_timeout_s: float = 1.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        if serial is not None and recording is not None:
            raise DriverError("a RealSense camera takes a serial number or a recording, not both")
        self.serial = serial
        self.recording = Path(recording) if recording is not None else None
        super().__init__((settings or CaptureSettings()).or_defaults(**self._defaults()))
        self._frame_timeout_ms = int(frame_timeout_s * 1000)
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
        self.device_info: dict[str, str] = {}

    def _defaults(self) -> dict[str, Any]:
        if self.recording is not None:
            # A recording plays its own mode; only a live sensor's auto-exposure settles.
            return {"name": f"realsense:{self.recording}", "settle_frames": 0}
        return {
            "name": f"realsense:{self.serial or ''}".rstrip(":"),
            # A mode every D400 colour sensor has, also over USB 2.
            "width": 640,
            "height": 480,
            "fps": 30,
            "settle_frames": 15,
        }

    def request_restart(self) -> None:
        """Have the capture thread restart the pipeline (as it does when frames stop)."""
        self._restart_requested = True

    def pause_playback(self, paused: bool) -> None:
        """Fault injection (`grasprt faults`): pause or resume a recording's playback,
        so frames stop while the pipeline stays up, as when a camera stops sending."""
        playback = self._playback
        if playback is None:
            raise DriverError(f"{self.name}: not playing a recording")
        if paused:
            playback.pause()
        else:
            playback.resume()

    # -- CaptureCamera hooks -------------------------------------------------------

    def _open(self) -> Intrinsics | None:
        self._rs = import_pyrealsense2()
        self._config = self._make_config()
        self._pipeline = self._rs.pipeline()
        return self._start_pipeline()

    def _close(self) -> None:
        self._stop_pipeline()

    def _no_first_frame(self, timeout_s: float) -> tuple[str, str]:
        return (
            "the recording has no colour frames",
            f"no colour frames within {timeout_s:g} s of starting (try another USB 3 port or "
            "cable)",
        )

    def _mode(self) -> tuple[int, int, int]:
        """The colour mode asked for; 0 means any (a recording's own)."""
        return self.width or 0, self.height or 0, int(self.fps or 0)

    # -- pipeline ------------------------------------------------------------------

    def _make_config(self) -> Any:
        rs = self._rs
        config = rs.config()
        width, height, fps = self._mode()
        if self.recording is not None:
            if not self.recording.is_file():
                raise DriverError(f"no such RealSense recording: {self.recording}")
            config.enable_device_from_file(str(self.recording), repeat_playback=self.loop)
            config.enable_stream(rs.stream.color, width, height, rs.format.any, fps)
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
        config.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        return config

    def _connected_serials(self) -> list[str]:
        rs = self._rs
        try:
            devices = rs.context().query_devices()
            return [d.get_info(rs.camera_info.serial_number) for d in devices]
        except RuntimeError as e:
            raise DriverError(f"librealsense cannot list devices: {e}") from None

    def _start_pipeline(self) -> Intrinsics | None:
        """Start streaming; the stream's intrinsics unless a calibration file replaces them."""
        rs = self._rs
        profile = self._start_profile()
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
        # With a calibration file the factory model is not needed, even one with no
        # OpenCV form (fisheye).
        intrinsics = None if self.settings.calibration else self._stream_intrinsics(stream)
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
        return intrinsics

    def _start_profile(self) -> Any:
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
            width, height, fps = self._mode()
            raise DriverError(
                f"RealSense {self.serial} cannot stream colour {width}x{height}@{fps} rgb8 "
                f"({message}); modes it has: {self._colour_modes()}"
            ) from None
        return profile

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
        data = np.asanyarray(colour.get_data())
        # The array views librealsense's buffer, which it reuses: convert or copy now.
        image = data.copy() if self._to_rgb is None else cv2.cvtColor(data, self._to_rgb)
        timestamp_ms = float(colour.get_timestamp())
        stamp = arrival
        # Wall-clock stamps map onto the loop's clock only when that is the real one.
        if self._stamps_on_monotonic and self._playback is None:
            global_time = (
                colour.get_frame_timestamp_domain() == self._rs.timestamp_domain.global_time
            )
            stamp = capture_stamp(
                arrival, arrival_system_ms, timestamp_ms, global_time, _metadata(self._rs, colour)
            )
        return Frame(image, stamp, 0, device_stamp=timestamp_ms / 1000.0)  # seq: the base's

    def _restart(self) -> None:
        self._stop_pipeline()
        if not self._sleep(self._backoff_s):
            return None
        try:
            # The same config again: the stream's intrinsics are the ones connect() took.
            self._start_pipeline()
        except DriverError:
            self._backoff_s = min(self._backoff_s * 2.0, self._max_backoff_s)
            raise
        self._restart_settle()
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


def from_spec(spec: CameraSpec, settings: CaptureSettings) -> RealSenseCamera:
    """The camera a parsed `--camera realsense[...]` names (drivers/factory.py)."""
    if spec.is_file:
        return RealSenseCamera(settings=settings, recording=spec.target)
    return RealSenseCamera(spec.target, settings)
