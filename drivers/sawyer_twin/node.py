"""The twin's one ROS node: a simulated world behind every topic the Intera SDK uses.

Wiring only; each part has its module. Threads: rospy's (one per subscription, for
the callbacks), the tick at `rate_hz` (command timeout, joint and endpoint states,
robot state, gripper state, truth), the camera at its frame rate, and the fault
schedule. The world is advanced by whoever reads or commands it (its own lock keeps
that consistent), on a monotonic clock: the twin runs in real time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from std_msgs.msg import String

from grasprt.clock import MonotonicClock
from grasprt.drivers.sawyer_twin.arm import TwinArm
from grasprt.drivers.sawyer_twin.camera import CameraServer
from grasprt.drivers.sawyer_twin.command_log import CommandLog
from grasprt.drivers.sawyer_twin.enable import EnableServer
from grasprt.drivers.sawyer_twin.episode import EpisodeServer
from grasprt.drivers.sawyer_twin.faults import (
    FaultFlags,
    FaultSchedule,
    ScheduledFault,
    check_kind,
)
from grasprt.drivers.sawyer_twin.gripper import DEVICE, DEVICE_CONFIG, ElectricGripper
from grasprt.drivers.sawyer_twin.io_device import IODeviceServer, IONodeServer
from grasprt.drivers.sawyer_twin.kin_services import KinematicsServices
from grasprt.drivers.sawyer_twin.limb import LimbServer
from grasprt.drivers.sawyer_twin.params import set_robot_params
from grasprt.drivers.sawyer_twin.state import Assembly
from grasprt.drivers.sim.config import SimSettings
from grasprt.drivers.sim.factory import make_sim
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER

FAULT_TOPIC = "/grasprt_twin/fault"
# Divisors of the tick (100 Hz): how often the slower topics go out.
STATE_EVERY = 2  # /robot/state at 50 Hz
GRIPPER_EVERY = 5  # gripper IO state at 20 Hz (the SDK polls for acks every 0.1 s)
TRUTH_EVERY = 50  # truth at 2 Hz
CONFIG_EVERY = 100  # IO configs and node states at 1 Hz (latched as well)


@dataclass(frozen=True)
class TwinOptions:
    seed: int = 0
    gap: str = "default"
    moving: bool = False
    faults: tuple[ScheduledFault, ...] = ()
    log_path: str | None = None
    rate_hz: float = 100.0
    # The whole [sim] section (mount error, board, ...); None: gap and moving alone.
    sim: SimSettings | None = None


class Twin:
    def __init__(self, rospy: Any, options: TwinOptions) -> None:
        self._rospy = rospy
        self.options = options
        self.clock = MonotonicClock()
        settings = options.sim or SimSettings(gap=options.gap, moving=options.moving)
        config = settings.sim_config()
        world, _robot, camera = make_sim(config, self.clock, options.seed)
        self.world = world
        self.flags = FaultFlags()
        self.assembly = Assembly(halt=lambda: self.arm.hold())
        self.arm = TwinArm(world, self.assembly.can_move)
        self.log = CommandLog(options.log_path) if options.log_path else None
        self.params = set_robot_params(rospy)
        kin = Kinematics(SAWYER)
        self.enable = EnableServer(rospy, self.assembly)
        self.limb = LimbServer(rospy, self.arm, kin, self.flags, self.log)
        self.kinematics = KinematicsServices(rospy, kin, lambda: self.limb.last_q)
        self.gripper = ElectricGripper(self.arm, lambda: not self.assembly.snapshot().stopped)
        self.ee_node = IONodeServer(rospy, "end_effector", {DEVICE: DEVICE_CONFIG}, {})
        self.ee_device = IODeviceServer(
            rospy, "end_effector", DEVICE, DEVICE_CONFIG, self.gripper.signals, self.gripper.write
        )
        self.camera = CameraServer(rospy, camera, self.flags)
        self.episodes = EpisodeServer(rospy, self.arm, options.seed)
        self._fault_sub = rospy.Subscriber(FAULT_TOPIC, String, self._on_fault, queue_size=10)
        self._stop = threading.Event()
        self._schedule = FaultSchedule(options.faults, self.apply_fault, self._stop)
        self._ticker: threading.Thread | None = None
        self.ticks = 0
        self.started_at = time.monotonic()

    # ---- faults ---------------------------------------------------------------------

    def _on_fault(self, msg: Any) -> None:
        try:
            self.apply_fault(check_kind(msg.data))
        except Exception as err:  # a bad kind from a user: say so, keep serving
            self._rospy.logwarn("twin: %s ignored: %s", FAULT_TOPIC, err)

    def apply_fault(self, kind: str) -> None:
        self._rospy.logwarn("twin: fault %s", kind)
        if self.log is not None:
            # In the command log too: a test times the reaction from this line.
            self.log.write({"fault": kind, "at": self._rospy.get_rostime().to_sec()})
        if kind == "estop":
            self.assembly.press_estop()
            self.arm.hold()  # held even if it was already disabled
        elif kind == "error":
            self.assembly.raise_error()
            self.arm.hold()
        elif kind == "stop_joint_states":
            self.flags.joint_states_stopped = True
        elif kind == "freeze_camera":
            self.flags.camera_frozen = True
        elif kind == "clear":
            self.assembly.release_estop()
            self.flags.clear()
        self.enable.publish()

    # ---- running --------------------------------------------------------------------

    def start(self) -> None:
        """Publish everything once (the SDK may already be waiting), then run the threads."""
        self._publish_configs()
        self._tick(0)
        self.started_at = time.monotonic()
        self._ticker = threading.Thread(target=self._tick_loop, name="twin-tick", daemon=True)
        self._ticker.start()
        self.camera.start(self._stop)
        self._schedule.start(time.monotonic)

    def _publish_configs(self) -> None:
        for server in (self.ee_node, self.camera.io_node):
            server.publish()
        for device in (self.ee_device, self.camera.io_device):
            device.publish_config()
            device.publish_state()

    def _tick(self, n: int) -> None:
        if self.arm.check_timeout() and self.log is not None:
            # The robot's own backstop fired: a test times it against the last command.
            self.log.write({"hold": "command timeout", "at": self._rospy.get_rostime().to_sec()})
        self.limb.publish()
        if n % STATE_EVERY == 0:
            self.enable.publish()
        if n % GRIPPER_EVERY == 0:
            self.ee_device.publish_state()
            self.camera.io_device.publish_state()
        if n % TRUTH_EVERY == 0:
            self.episodes.publish_truth()
        if n % CONFIG_EVERY == 0:
            self._publish_configs()

    def _tick_loop(self) -> None:
        period = 1.0 / self.options.rate_hz
        due = time.monotonic()
        n = 0
        while not self._stop.is_set() and not self._rospy.is_shutdown():
            n += 1
            try:
                self._tick(n)
            except Exception as err:  # one bad tick must not end the robot's topics
                self._rospy.logerr("twin: tick failed: %s", err)
            self.ticks = n
            due += period
            now = time.monotonic()
            if due < now:
                due = now  # fell behind: no burst of catch-up ticks
            self._stop.wait(due - now)

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(2.0)
        self.camera.join(2.0)
        self.arm.hold()
        self.kinematics.shutdown()
        if self.log is not None:
            self.log.close()

    def rates(self) -> dict[str, float]:
        """Measured since start: joint_states Hz, camera Hz (while someone listened),
        mean render ms."""
        elapsed = max(time.monotonic() - self.started_at, 1e-9)
        frames = self.camera.frames
        return {
            "seconds": elapsed,
            "joint_states_hz": self.limb.joint_state_msgs / elapsed,
            "camera_hz": frames / self.camera.streamed_s if self.camera.streamed_s else 0.0,
            "render_ms": 1000.0 * self.camera.render_s / frames if frames else 0.0,
            "commands": float(self.limb.commands),
            "refused": float(self.limb.refused),
        }
