"""Forward kinematics of a profile's serial chain (numpy only; the limiter uses it).

Each joint turns about its own z axis. A joint's origin (xyz, rpy) places it in the
parent link; rpy is fixed-axis: R = Rz(yaw) @ Ry(pitch) @ Rx(roll), as in URDF.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grasprt.profiles import FixedFrame, RobotProfile


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def transform(xyz: tuple[float, float, float], rpy: tuple[float, float, float]) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = rpy_matrix(*rpy)
    t[:3, 3] = xyz
    return t


_EYE4 = np.eye(4)
_EYE4.setflags(write=False)


def rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    t = np.eye(4)
    t[0, 0], t[0, 1], t[1, 0], t[1, 1] = c, -s, s, c
    return t


@dataclass(frozen=True)
class Poses:
    links: list[np.ndarray]  # 4x4 pose of each joint's child link in the base frame
    hand: np.ndarray  # 4x4 right_hand
    camera: np.ndarray  # 4x4 camera optical frame (z forward, x right, y down)
    fingertips: np.ndarray  # 3-vector, the point between the fingertips


class Kinematics:
    """Forward kinematics for one profile, with the joint origins precomputed."""

    def __init__(self, profile: RobotProfile) -> None:
        self.profile = profile
        self._origins = [transform(j.xyz, j.rpy) for j in profile.joints]
        self._hand = transform(profile.hand.xyz, profile.hand.rpy)
        # The image plane needs the optical convention (z forward, x right, y down).
        optical = np.eye(4)
        optical[:3, :3] = profile.camera_optical
        self._camera = transform(profile.camera.xyz, profile.camera.rpy) @ optical
        self._tip = profile.gripper.fingertip_offset

    def links(self, q: np.ndarray) -> list[np.ndarray]:
        # The same products as t @ origin @ rot_z(angle), in the same order (so the same
        # numbers), with the cosines and sines taken for all joints in one call and each
        # rotation filled into a copy of the identity: the per-call overhead on 4x4
        # matrices is most of the cost, and the limiter, the perception gate and the
        # simulated arm each run this every cycle.
        angles = np.asarray(q, dtype=np.float64)
        cos, sin = np.cos(angles).tolist(), np.sin(angles).tolist()
        out = []
        t = _EYE4
        for origin, c, s in zip(self._origins, cos, sin, strict=True):
            r = _EYE4.copy()
            r[0, 0], r[0, 1], r[1, 0], r[1, 1] = c, -s, s, c
            t = t @ origin @ r
            out.append(t)
        return out

    def _fixed(self, links: list[np.ndarray], frame: FixedFrame, offset: np.ndarray) -> np.ndarray:
        return links[frame.parent_joint_index] @ offset

    def poses(self, q: np.ndarray) -> Poses:
        links = self.links(q)
        hand = self._fixed(links, self.profile.hand, self._hand)
        camera = self._fixed(links, self.profile.camera, self._camera)
        tips = hand[:3, 3] + hand[:3, 2] * self._tip
        return Poses(links=links, hand=hand, camera=camera, fingertips=tips)

    def lowest_point_z(self, q: np.ndarray) -> float:
        """The lowest z of the wrist, hand and fingertips: what the table floor guards."""
        p = self.poses(q)
        zs = [p.links[i][2, 3] for i in self.profile.floor_links]
        return float(min(*zs, p.hand[2, 3], p.fingertips[2]))
