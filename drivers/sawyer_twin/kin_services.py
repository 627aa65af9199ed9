"""``ExternalTools/right/PositionKinematicsNode/FKService`` and ``IKService``.

``Limb`` waits for both at construction; ``fk_request`` / ``ik_request`` call them.
FK is grasprt's kinematics (the profile's URDF figures); IK is a damped-least-squares
solve of the hand's full pose (poses.solve_pose_ik), seeded as the request asks: the
user's seed, else the current joints, then the neutral pose (as SEED_AUTO tries several
seeds). Joints a request leaves out take their current reported values. No collision
model: ``inCollision`` is always False.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from intera_core_msgs.srv import (
    SolvePositionFK,
    SolvePositionFKResponse,
    SolvePositionIK,
    SolvePositionIKResponse,
)
from sensor_msgs.msg import JointState

from grasprt.drivers.sawyer_twin.limb import pose_msg
from grasprt.drivers.sawyer_twin.poses import BASE_FRAME, HAND, IK_TIPS, rotation, solve_pose_ik
from grasprt.drivers.sawyer_twin.poses import tip_pose as tip_pose_of
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER

NS = "ExternalTools/right/PositionKinematicsNode/"
SEED_USER, SEED_CURRENT, SEED_NS_MAP = 1, 2, 3
IK_FAILED, IK_ENDPOINT_DOES_NOT_EXIST = -1, -3


class KinematicsServices:
    def __init__(self, rospy: Any, kin: Kinematics, current_q: Callable[[], np.ndarray]) -> None:
        self._rospy = rospy
        self.kin = kin
        self.names = list(SAWYER.joint_names)
        self._current_q = current_q
        self._fk = rospy.Service(NS + "FKService", SolvePositionFK, self._on_fk)
        self._ik = rospy.Service(NS + "IKService", SolvePositionIK, self._on_ik)

    def shutdown(self) -> None:
        self._fk.shutdown()
        self._ik.shutdown()

    def _q_from(self, js: Any) -> np.ndarray:
        q = np.asarray(self._current_q(), dtype=np.float64).copy()
        for name, value in zip(js.name, js.position, strict=False):
            if name in self.names:
                q[self.names.index(name)] = value
        return q

    def _on_fk(self, req: Any) -> Any:
        resp = SolvePositionFKResponse()
        for i, js in enumerate(req.configuration):
            tip = req.tip_names[i] if i < len(req.tip_names) else HAND
            try:
                t = tip_pose_of(self.kin, self._q_from(js), tip)
            except (KeyError, ValueError):
                resp.pose_stamp.append(PoseStamped())
                resp.isValid.append(False)
                resp.inCollision.append(False)
                continue
            ps = PoseStamped(pose=pose_msg(t))
            ps.header.frame_id = BASE_FRAME
            ps.header.stamp = self._rospy.get_rostime()
            resp.pose_stamp.append(ps)
            resp.isValid.append(True)
            resp.inCollision.append(False)
        return resp

    def _seeds(self, req: Any, i: int) -> list[tuple[int, np.ndarray]]:
        user = req.seed_angles[i] if i < len(req.seed_angles) else None
        seeds: list[tuple[int, np.ndarray]] = []
        if user is not None and user.name and req.seed_mode in (0, SEED_USER):
            seeds.append((SEED_USER, self._q_from(user)))
        if req.seed_mode in (0, SEED_CURRENT):
            seeds.append((SEED_CURRENT, np.asarray(self._current_q(), dtype=np.float64)))
        if req.seed_mode in (0, SEED_NS_MAP):
            seeds.append((SEED_NS_MAP, np.asarray(SAWYER.neutral, dtype=np.float64)))
        return seeds

    def _on_ik(self, req: Any) -> Any:
        resp = SolvePositionIKResponse()
        for i, ps in enumerate(req.pose_stamp):
            tip = req.tip_names[i] if i < len(req.tip_names) else HAND
            result, q = self._solve(req, i, ps.pose, tip)
            resp.joints.append(JointState(name=list(self.names), position=[float(v) for v in q]))
            resp.result_type.append(result)
        return resp

    def _solve(self, req: Any, i: int, pose: Any, tip: str) -> tuple[int, np.ndarray]:
        if tip not in IK_TIPS:
            return IK_ENDPOINT_DOES_NOT_EXIST, np.zeros(7)
        o, p = pose.orientation, pose.position
        target = np.eye(4)
        try:
            target[:3, :3] = rotation(o.x, o.y, o.z, o.w)
        except ValueError:
            return IK_FAILED, np.zeros(7)
        target[:3, 3] = (p.x, p.y, p.z)
        for kind, seed in self._seeds(req, i):
            q = solve_pose_ik(self.kin, seed, target, tip)
            if q is not None:
                return kind, q
        return IK_FAILED, np.zeros(7)
