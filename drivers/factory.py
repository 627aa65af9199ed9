"""Camera specs (the ``--camera`` strings) and the cameras they make.

A spec is ``KIND[:TARGET][@WxH[xFPS]][,OPTION...]``, e.g. ``realsense:123456789012@640x480x30``
or ``opencv:clip.mp4,loop,pace=fast``. A ``gst:`` spec is a GStreamer pipeline taken
whole (its commas belong to the pipeline). Drivers are imported only when used, so a
robot PC without pyrealsense2 can still use a webcam.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from grasprt.calibration.realsense_intrinsics import RECORDING_SUFFIXES
from grasprt.errors import ConfigError, DriverError
from grasprt.types import Camera, Clock

CAMERA_SPEC_HELP = (
    "Camera: sim | realsense[:SERIAL|:FILE.db3|:FILE.bag] | opencv:INDEX|/dev/videoN|FILE | "
    "gst:PIPELINE | ros:TOPIC (sensor_msgs/Image). Append @WxH or @WxHxFPS to pick a mode "
    "and ,OPTION for options: "
    "loop and pace=fast (recordings, video files), settle=N (frames dropped at start), "
    "fourcc=MJPG (V4L2). E.g. realsense:123456789012@640x480x30, opencv:0@1280x720x30,"
    "fourcc=MJPG, opencv:clip.mp4,loop. `grasprt devices` lists what is connected."
)

_HEAD = re.compile(
    r"(?P<kind>[a-z]+)(?::(?P<target>.*?))?(?:@(?P<width>\d+)x(?P<height>\d+)(?:x(?P<fps>\d+))?)?"
)
_SERIAL = re.compile(r"[A-Za-z0-9_-]+")
_BOOL = {"": True, "1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _no_check(target: str | None) -> str | None:
    return None


def _needs_target(target: str | None) -> str | None:
    return None if target else "needs a device index, /dev/video path or video file"


def _serial_or_recording(target: str | None) -> str | None:
    if target is None or _is_recording(target) or _SERIAL.fullmatch(target):
        return None
    return f"{target!r} is neither a serial number nor a .db3/.bag recording"


_ROS_NAME = re.compile(r"[/A-Za-z][A-Za-z0-9_/]*")


def _ros_topic(target: str | None) -> str | None:
    # rosgraph's legal names, less private (~) ones: the topic is not grasprt's own.
    if target is None:
        return "needs a topic, e.g. ros:/camera/color/image_raw"
    if not _ROS_NAME.fullmatch(target) or "//" in target or target.endswith("/"):
        return f"{target!r} is not a ROS topic name (/ns/image_raw or ns/image_raw)"
    return None


def _is_recording(target: str) -> bool:
    return target.lower().endswith(RECORDING_SUFFIXES)


def _is_video_file(target: str) -> bool:
    return not (target.isdigit() or target.startswith("/dev/"))


@dataclass(frozen=True)
class CameraKind:
    """One `--camera KIND:...` entry. A new camera is its driver and one entry here."""

    name: str
    form: str  # how its spec looks, for messages
    # "module:function" (CameraSpec, CaptureSettings) -> Camera; None: the robot's own.
    build: str | None
    # Why a target is wrong for this kind, or None when it will do.
    check_target: Callable[[str | None], str | None] = _no_check
    # Which targets are files (recordings, videos): they take loop and pace.
    is_file: Callable[[str], bool] = lambda target: False
    # The whole rest of the spec is the target, commas and all (a GStreamer pipeline).
    whole: bool = False
    # Whether `@WxH[xFPS]` picks a mode; a topic or a pipeline brings its own.
    takes_mode: bool = True


CAMERAS: dict[str, CameraKind] = {
    k.name: k
    for k in (
        CameraKind("sim", "sim", None),
        CameraKind(
            "realsense",
            "realsense[:SERIAL|:FILE.db3|:FILE.bag][@WxH[xFPS]]",
            "grasprt.drivers.realsense:from_spec",
            _serial_or_recording,
            _is_recording,
        ),
        CameraKind(
            "opencv",
            "opencv:INDEX|/dev/videoN|FILE[@WxH[xFPS]]",
            "grasprt.drivers.opencv_camera:from_spec",
            _needs_target,
            _is_video_file,
        ),
        CameraKind(
            "gst", "gst:PIPELINE", "grasprt.drivers.opencv_camera:from_gst_spec", whole=True
        ),
        CameraKind(
            "ros",
            "ros:TOPIC",
            "grasprt.drivers.ros_camera:from_spec",
            _ros_topic,
            takes_mode=False,
        ),
    )
}
CAMERA_SPEC_FORMS = ", ".join(k.form for k in CAMERAS.values())


@dataclass(frozen=True)
class CameraSpec:
    """A parsed ``--camera`` string. ``target`` is a serial, file, device or pipeline."""

    kind: str  # a name in CAMERAS
    target: str | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    loop: bool = False
    pace: bool = True
    settle: int | None = None
    fourcc: str | None = None

    @property
    def is_file(self) -> bool:
        """A recording or video file (as opposed to a live device)."""
        return self.target is not None and CAMERAS[self.kind].is_file(self.target)


def _bad(spec: str, why: str | None = None) -> ConfigError:
    reason = f"{why}; " if why else ""
    return ConfigError(f"bad camera spec {spec!r}: {reason}use {CAMERA_SPEC_FORMS}")


def parse_camera_spec(spec: str) -> CameraSpec:
    """Parse a ``--camera`` string; ConfigError (one line) if it is not one."""
    text = spec.strip()
    kind_name, _, rest = text.partition(":")
    whole = CAMERAS.get(kind_name)
    if whole is not None and whole.whole:
        if not rest.strip():
            raise _bad(spec, f"{kind_name}: needs a pipeline")
        return CameraSpec(kind_name, rest.strip())
    head, *options = text.split(",")
    match = _HEAD.fullmatch(head)
    if match is None or match["kind"] not in CAMERAS:
        raise _bad(spec)
    kind = CAMERAS[match["kind"]]
    target = match["target"] or None
    size = [int(v) if v else None for v in (match["width"], match["height"], match["fps"])]
    if kind.build is None and (target or any(size) or options):
        raise _bad(spec, f"{kind.name} takes no target, mode or options")
    why = kind.check_target(target)
    if why:
        raise _bad(spec, f"{kind.name}: {why}" if target is None else why)
    if any(v == 0 for v in size):
        raise _bad(spec, "width, height and fps must be positive")
    if any(size) and not kind.takes_mode:
        raise _bad(spec, f"{kind.name} streams at its own size and rate: drop the @mode")
    parsed = CameraSpec(kind.name, target, *size)
    return _with_options(spec, parsed, options)


def _with_options(spec: str, parsed: CameraSpec, options: list[str]) -> CameraSpec:
    values: dict[str, object] = {}
    for option in options:
        key, _, value = option.strip().partition("=")
        key = key.strip().lower()
        value = value.strip()
        if key in ("loop", "pace") and not parsed.is_file:
            raise _bad(spec, f"{key} applies to recordings and video files only")
        if key == "loop":
            if value.lower() not in _BOOL:
                raise _bad(spec, f"loop takes no value or 0/1, not {value!r}")
            values["loop"] = _BOOL[value.lower()]
        elif key == "pace":
            if value not in ("file", "fast"):
                raise _bad(spec, f"pace is 'file' (recorded rate) or 'fast', not {value!r}")
            values["pace"] = value == "file"
        elif key == "settle":
            if not value.isdigit():
                raise _bad(spec, f"settle takes a frame count, not {value!r}")
            values["settle"] = int(value)
        elif key == "fourcc" and parsed.kind == "opencv" and not parsed.is_file:
            if len(value) != 4:
                raise _bad(spec, f"fourcc takes 4 characters (e.g. MJPG), not {value!r}")
            values["fourcc"] = value
        else:
            raise _bad(spec, f"unknown option {option.strip()!r} for {parsed.kind}")
    if parsed.kind == "opencv" and parsed.is_file and parsed.width is not None:
        raise _bad(spec, "a video file plays at its own size and rate: drop the @mode")
    return replace(parsed, **values)


def make_camera(
    spec: str,
    *,
    clock: Clock | None = None,
    calibration: str | None = None,
    sim_camera_factory: Callable[[], Camera] | None = None,
) -> Camera:
    """The camera a ``--camera`` string names (not yet connected).

    ``calibration`` is a ROS camera_info YAML: it gives an OpenCV camera its
    intrinsics and overrides a RealSense's factory ones.
    """
    parsed = parse_camera_spec(spec)
    name = spec.strip()
    if CAMERAS[parsed.kind].build is None:
        if sim_camera_factory is None:
            raise DriverError("the sim camera needs --robot sim")
        if calibration is not None:
            raise ConfigError(
                "--calibration does not apply to the sim camera (it knows its optics)"
            )
        return sim_camera_factory()
    if calibration is not None and not Path(calibration).is_file():
        raise ConfigError(f"no such calibration file: {calibration}")
    from grasprt.drivers.capture_camera import CaptureSettings

    settings = CaptureSettings(
        name=name,
        width=parsed.width,
        height=parsed.height,
        fps=parsed.fps,
        loop=parsed.loop,
        pace=parsed.pace,
        settle_frames=parsed.settle,
        calibration=calibration,
        clock=clock,
    )
    build = CAMERAS[parsed.kind].build
    assert build is not None  # only the robot's own camera has no builder
    from grasprt.drivers.registry import resolve

    return resolve(build)(parsed, settings)
