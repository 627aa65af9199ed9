"""The hand camera: frames rendered by the sim's wrist camera, on the robot's topics.

``/io/internal_camera/right_hand_camera/image_raw`` (sensor_msgs/Image, rgb8) and
``camera_info`` at the camera's rate, each stamped with the frame's capture time in ROS
time. The sim camera has no distortion, so ``image_rect_color`` (what
``intera_interface.Cameras`` subscribes to for a colour camera) is the same image; it is
only serialised when someone listens, and no frame is rendered while nobody listens to
any of the camera's topics. The camera's IO device (``camera_streaming``)
lets ``Cameras.start_streaming`` / ``stop_streaming`` work; unlike the robot, the twin
streams from the start, so a plain subscriber needs no start call.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sensor_msgs.msg import CameraInfo, Image

from grasprt.drivers.sawyer_twin.faults import FaultFlags
from grasprt.drivers.sawyer_twin.io_device import IODeviceServer, IONodeServer, Signal
from grasprt.drivers.sim.camera import SimWristCamera
from grasprt.types import Frame, Intrinsics

CAMERA = "right_hand_camera"
NS = f"/io/internal_camera/{CAMERA}"
FRAME_ID = "right_hand_camera_optical"
# /robot_config/camera_config: a colour camera type (intera_interface.Cameras looks it
# up to pick image_rect_color over image_rect).
CAMERA_CONFIG = {CAMERA: {"cameraType": "ienso_ethernet"}}


def camera_info_msg(intr: Intrinsics) -> Any:
    dist = [*intr.dist, 0.0, 0.0, 0.0, 0.0, 0.0][: max(5, len(intr.dist))]
    msg = CameraInfo()
    msg.header.frame_id = FRAME_ID
    msg.width, msg.height = intr.width, intr.height
    msg.distortion_model = "plumb_bob" if len(dist) == 5 else "rational_polynomial"
    msg.D = dist
    msg.K = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    msg.R = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.P = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class CameraServer:
    def __init__(self, rospy: Any, camera: SimWristCamera, flags: FaultFlags) -> None:
        self._rospy = rospy
        self.camera = camera
        self.flags = flags
        self.streaming = True
        self.frames = 0
        self.render_s = 0.0  # total time spent rendering, for the rate report
        self.streamed_s = 0.0  # time with someone listening: the camera rate's denominator
        self._info = camera_info_msg(camera.intrinsics)
        pub = rospy.Publisher
        self._raw = pub(f"{NS}/image_raw", Image, queue_size=1, tcp_nodelay=True)
        self._rect = pub(f"{NS}/image_rect_color", Image, queue_size=1, tcp_nodelay=True)
        self._info_pub = pub(f"{NS}/camera_info", CameraInfo, queue_size=1, tcp_nodelay=True)
        self.io_node = IONodeServer(
            rospy,
            "internal_camera",
            devices={CAMERA: {"name": CAMERA}},
            plugins={"camera_plugin": {"params": {"cameras": [{"name": CAMERA}]}}},
        )
        self.io_device = IODeviceServer(
            rospy, "internal_camera", CAMERA, {"name": CAMERA}, self._signals, self._write
        )
        self._thread: threading.Thread | None = None

    def _signals(self) -> dict[str, Signal]:
        return {"camera_streaming": Signal("bool", "output", self.streaming)}

    def _write(self, name: str, value: Any) -> None:
        if name == "camera_streaming":
            self.streaming = bool(value)

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(stop,), name="twin-camera")
        self._thread.daemon = True
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self, stop: threading.Event) -> None:
        period = 1.0 / self.camera.fps
        due = time.monotonic()
        while not stop.is_set():
            if self.streaming and not self.flags.camera_frozen and self._listened():
                self._publish_one()
                self.streamed_s += period
            due += period
            now = time.monotonic()
            if due < now:  # fell behind: skip frames rather than burst
                due = now
            stop.wait(due - now)

    def _listened(self) -> bool:
        # Rendering costs ~4 ms a frame; with nobody subscribed it would only heat the
        # CPU (a new subscriber gets its first frame within one period anyway).
        pubs = (self._raw, self._rect, self._info_pub)
        return any(p.get_num_connections() > 0 for p in pubs)

    def _publish_one(self) -> None:
        t0 = time.monotonic()
        frame = self.camera.capture()
        self.render_s += time.monotonic() - t0
        stamp = self._ros_stamp(frame)
        msg = image_msg(frame, stamp)
        self._raw.publish(msg)
        if self._rect.get_num_connections() > 0:
            self._rect.publish(msg)
        self._info.header.stamp = stamp
        self._info_pub.publish(self._info)
        self.frames += 1

    def _ros_stamp(self, frame: Frame) -> Any:
        # The frame's stamp is the world's time (monotonic clock) at capture; the same
        # instant in ROS time is now minus how long ago that was.
        age = max(0.0, self.camera.clock.now() - frame.stamp)
        return self._rospy.get_rostime() - self._rospy.Duration.from_sec(age)


def image_msg(frame: Frame, stamp: Any) -> Any:
    h, w = frame.image.shape[:2]
    msg = Image()
    msg.header.stamp = stamp
    msg.header.seq = frame.seq
    msg.header.frame_id = FRAME_ID
    msg.height, msg.width = h, w
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * w
    msg.data = frame.image.tobytes()
    return msg
