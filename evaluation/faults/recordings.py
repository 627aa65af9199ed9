"""Camera sources for the camera faults: a RealSense recording (.db3, written from a
librealsense software device, as `rs.recorder` writes a real camera's) and a video file
for OpenCV, both at the simulated wrist camera's size, so they fill the bundle's view."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

import grasprt.drivers.sim as sim_package
from grasprt.calibration.camera_info import load_camera_info

# The sim's wrist camera: the bundle's own view (400x400, 80 degrees).
WRIST_CAMERA = Path(sim_package.__file__).parent / "wrist_camera.yaml"


def _image(i: int, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    image = np.full((h, w, 3), 90, np.uint8)
    # A moving patch: every frame differs, as a live camera's do.
    x = (10 * i) % (w - 40)
    image[h // 2 - 20 : h // 2 + 20, x : x + 40] = (230, 200, 30)
    return image


def write_video(path: Path, seconds: float, fps: float = 30.0) -> Path:
    intr = load_camera_info(WRIST_CAMERA)
    size = (intr.width, intr.height)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(int(seconds * fps)):
        out.write(cv2.cvtColor(_image(i, size), cv2.COLOR_RGB2BGR))
    out.release()
    return path


def write_realsense_recording(
    path: Path, seconds: float, fps: int = 15, *, real_time: bool = False
) -> Path:
    """A recording of `seconds` of frames. Playback paces frames by the times they were
    recorded at: `real_time` writes them at `fps` (it takes `seconds`), else all at once
    (a looped playback of it then streams as fast as it is read)."""
    import time

    import pyrealsense2 as rs

    intr = load_camera_info(WRIST_CAMERA)
    device = rs.software_device()
    sensor = device.add_sensor("RGB Camera")
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.color, 0, 1
    stream.width, stream.height, stream.fps, stream.bpp = intr.width, intr.height, fps, 3
    stream.fmt = rs.format.rgb8
    ri = rs.intrinsics()
    ri.width, ri.height = intr.width, intr.height
    ri.fx, ri.fy, ri.ppx, ri.ppy = intr.fx, intr.fy, intr.cx, intr.cy
    ri.model, ri.coeffs = rs.distortion.none, [0.0] * 5
    stream.intrinsics = ri
    profile = sensor.add_video_stream(stream).as_video_stream_profile()
    device.register_info(rs.camera_info.name, "Intel RealSense D435 (software)")
    device.register_info(rs.camera_info.serial_number, "000000000000")
    recorder = rs.recorder(str(path), device)
    sink = rs.frame_queue(4)
    sensor.open(profile)
    sensor.start(sink)
    start = time.monotonic()
    for i in range(int(seconds * fps)):
        if real_time:
            time.sleep(max(0.0, start + i / fps - time.monotonic()))
        frame = rs.software_video_frame()
        frame.pixels = np.ascontiguousarray(_image(i, (intr.width, intr.height)))
        frame.bpp, frame.stride = 3, intr.width * 3
        frame.timestamp = 1000.0 + i * 1000.0 / fps
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
