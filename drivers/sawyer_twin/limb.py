"""The right limb's topics: joint commands in, joint and endpoint states out.

In: ``/robot/limb/right/joint_command`` (POSITION_MODE is followed; other modes are
refused and logged, first of each mode at once, then at most every 5 s),
``set_speed_ratio`` and ``joint_command_timeout`` (latched by the SDK). Out, on every
tick: ``/robot/joint_states`` (the sim's *reported* angles: encoder offset and noise
included, as a real arm's encoders), ``endpoint_state`` (right_hand) and
``tip_states``, by forward kinematics of those reported angles, as the robot computes
them. Twists and wrenches are zero: nothing in grasprt reads them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion
from intera_core_msgs.msg import EndpointState, EndpointStates, JointCommand
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64

from grasprt.drivers.sawyer_twin.arm import TwinArm
from grasprt.drivers.sawyer_twin.command_log import CommandLog
from grasprt.drivers.sawyer_twin.faults import FaultFlags
from grasprt.drivers.sawyer_twin.poses import BASE_FRAME, GRIPPER_TIP, HAND, quaternion, tip_pose
from grasprt.kinematics import Kinematics

NS = "/robot/limb/right/"
MODES = {1: "POSITION_MODE", 2: "VELOCITY_MODE", 3: "TORQUE_MODE", 4: "TRAJECTORY_MODE"}
# The Sawyer's /robot/joint_states carries the head pan and the torso beside the arm.
HEAD_PAN = "head_pan"
TORSO = "torso_t0"
REFUSAL_LOG_EVERY_S = 5.0


def pose_msg(t: np.ndarray) -> Any:
    x, y, z, w = quaternion(t[:3, :3])
    p = t[:3, 3]
    return Pose(position=Point(*map(float, p)), orientation=Quaternion(x, y, z, w))


class LimbServer:
    def __init__(
        self,
        rospy: Any,
        arm: TwinArm,
        kin: Kinematics,
        flags: FaultFlags,
        log: CommandLog | None,
    ) -> None:
        self._rospy = rospy
        self.arm = arm
        self.kin = kin
        self.flags = flags
        self.log = log
        self.names = list(arm.names)
        self.commands = 0  # position commands followed
        self.refused = 0
        self.joint_state_msgs = 0
        self._refusal_logged: dict[str, float] = {}
        self._prev: tuple[float, np.ndarray] | None = None
        self.last_q: np.ndarray = arm.world.reported_state().q
        pub = rospy.Publisher
        self._js = pub("/robot/joint_states", JointState, queue_size=1, tcp_nodelay=True)
        self._ep = pub(NS + "endpoint_state", EndpointState, queue_size=1, tcp_nodelay=True)
        self._tips = pub(NS + "tip_states", EndpointStates, queue_size=1, tcp_nodelay=True)
        sub = rospy.Subscriber
        # queue_size 10, not 1: every command is logged, even one that arrives while
        # the previous callback runs.
        self._subs = [
            sub(
                NS + "joint_command",
                JointCommand,
                self._on_command,
                queue_size=10,
                tcp_nodelay=True,
            ),
            sub(NS + "set_speed_ratio", Float64, self._on_speed_ratio, queue_size=10),
            sub(NS + "joint_command_timeout", Float64, self._on_timeout, queue_size=10),
        ]

    # ---- in -------------------------------------------------------------------------

    def _on_command(self, msg: Any) -> None:
        received = self._rospy.get_rostime().to_sec()
        mode = int(msg.mode)
        names, positions = list(msg.names), [float(v) for v in msg.position]
        if mode != JointCommand.POSITION_MODE:
            reason = f"{MODES.get(mode, f'mode {mode}')} is not served (only POSITION_MODE)"
        elif len(names) != len(positions):
            reason = "names and positions differ in length"
        else:
            reason = self.arm.position_command(dict(zip(names, positions, strict=True)))
        if reason is None:
            self.commands += 1
        else:
            self.refused += 1
            self._log_refusal(reason)
        if self.log is not None:
            self.log.write(
                {
                    "received": received,
                    "sent": msg.header.stamp.to_sec(),
                    "mode": mode,
                    "names": names,
                    "positions": positions,
                    "accepted": reason is None,
                    "reason": reason,
                }
            )

    def _log_refusal(self, reason: str) -> None:
        now = time.monotonic()
        last = self._refusal_logged.get(reason)
        if last is None or now - last >= REFUSAL_LOG_EVERY_S:
            self._refusal_logged[reason] = now
            self._rospy.logwarn("twin: joint command refused: %s", reason)

    def _on_speed_ratio(self, msg: Any) -> None:
        effective = self.arm.set_speed_ratio(float(msg.data))
        self._rospy.loginfo("twin: speed ratio %.3f (arm runs at %.3f)", msg.data, effective)

    def _on_timeout(self, msg: Any) -> None:
        if not self.arm.set_command_timeout(float(msg.data)):
            self._rospy.logwarn("twin: joint command timeout %r ignored", msg.data)

    # ---- out ------------------------------------------------------------------------

    def publish(self) -> None:
        """One tick: the reported joints, and the endpoint from them."""
        state = self.arm.world.reported_state()
        q = state.q
        self.last_q = q
        stamp = self._rospy.get_rostime()
        if not self.flags.joint_states_stopped:
            self._js.publish(self._joint_state(q, stamp))
            self.joint_state_msgs += 1
        hand = self._endpoint(q, HAND, stamp)
        tip = self._endpoint(q, GRIPPER_TIP, stamp)
        self._ep.publish(hand)
        tips = EndpointStates(names=[HAND, GRIPPER_TIP], states=[hand, tip])
        tips.header.stamp = stamp
        tips.header.frame_id = BASE_FRAME
        self._tips.publish(tips)

    def _joint_state(self, q: np.ndarray, stamp: Any) -> Any:
        now = time.monotonic()
        true_q = self.arm.world.true_q()
        velocity = np.zeros(7)
        if self._prev is not None and now > self._prev[0]:
            velocity = (true_q - self._prev[1]) / (now - self._prev[0])
        self._prev = (now, true_q)
        msg = JointState(
            name=[HEAD_PAN, *self.names, TORSO],
            position=[0.0, *map(float, q), 0.0],
            velocity=[0.0, *map(float, velocity), 0.0],
            effort=[0.0] * 9,
        )
        msg.header.stamp = stamp
        return msg

    def _endpoint(self, q: np.ndarray, tip: str, stamp: Any) -> Any:
        msg = EndpointState(pose=pose_msg(tip_pose(self.kin, q, tip)), valid=True)
        msg.header.stamp = stamp
        msg.header.frame_id = BASE_FRAME
        return msg
