"""The Sawyer's named frames ("tips") from grasprt's kinematics, quaternions, and a
full-pose inverse kinematics for the SDK's IK service. numpy only.

Frames are in ``right_arm_base_link``, which the twin reports as the SDK's ``base``
frame: on the Sawyer's URDF the arm mount joint between them has a zero origin.
"""

from __future__ import annotations

import math

import numpy as np

from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER

BASE_FRAME = "base"
HAND = "right_hand"
GRIPPER_TIP = "right_gripper_tip"
CAMERA = "right_hand_camera_optical"
LINKS = tuple(f"right_l{i}" for i in range(7))
TIPS = (HAND, GRIPPER_TIP, CAMERA, *LINKS)
# Tips the IK service solves for: they ride on the hand, a fixed offset from it.
IK_TIPS = (HAND, GRIPPER_TIP)


def tip_offset(tip: str) -> np.ndarray:
    """The tip's pose in the hand frame (IK tips only)."""
    t = np.eye(4)
    if tip == GRIPPER_TIP:
        t[2, 3] = SAWYER.gripper.fingertip_offset
    elif tip != HAND:
        raise KeyError(tip)
    return t


def tip_pose(kin: Kinematics, q: np.ndarray, tip: str) -> np.ndarray:
    """4x4 pose of a named frame at joint angles `q`; KeyError for an unknown tip."""
    poses = kin.poses(q)
    if tip in IK_TIPS:
        return poses.hand @ tip_offset(tip)
    if tip == CAMERA:
        return poses.camera
    return poses.links[LINKS.index(tip)]


def quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation matrix, w >= 0 (Shepperd's method: stable everywhere)."""
    tr = float(np.trace(r))
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        w, x = 0.25 * s, (r[2, 1] - r[1, 2]) / s
        y, z = (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-12))
        v = [0.0, 0.0, 0.0]
        v[i] = 0.25 * s
        v[j] = (r[j, i] + r[i, j]) / s
        v[k] = (r[k, i] + r[i, k]) / s
        w = (r[k, j] - r[j, k]) / s
        x, y, z = v
    if w < 0:
        x, y, z, w = -x, -y, -z, -w
    return float(x), float(y), float(z), float(w)


def rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Rotation matrix of a quaternion (normalised first; the SDK's may not be)."""
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if n < 1e-12:
        raise ValueError("zero quaternion")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(metres, radians) between two 4x4 poses."""
    cos = (float(np.trace(a[:3, :3].T @ b[:3, :3])) - 1.0) / 2.0
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3])), math.acos(max(-1.0, min(1.0, cos)))


def solve_pose_ik(
    kin: Kinematics,
    seed: np.ndarray,
    target: np.ndarray,
    tip: str = HAND,
    max_iter: int = 300,
    pos_tol: float = 1e-5,
    rot_tol: float = 1e-4,
) -> np.ndarray | None:
    """Joint angles within the limits putting `tip` at the 4x4 `target`, or None.

    Damped least squares on the hand's pose (the tip is a fixed offset from it), from
    `seed`: the solution stays near it, as Intera's solver does from its seed."""
    hand_target = target @ np.linalg.inv(tip_offset(tip))
    lower, upper = np.asarray(SAWYER.lower), np.asarray(SAWYER.upper)
    q = np.clip(np.asarray(seed, dtype=np.float64).copy(), lower, upper)
    err = np.zeros(6)
    for _ in range(max_iter):
        poses = kin.poses(q)
        hand = poses.hand
        dp, dr = pose_error(hand, hand_target)
        if dp < pos_tol and dr < rot_tol:
            return q
        err[:3] = hand_target[:3, 3] - hand[:3, 3]
        # Small-angle rotation error: half the sum of the axes' cross products.
        err[3:] = 0.5 * sum(np.cross(hand[:3, i], hand_target[:3, i]) for i in range(3))
        links = np.stack(poses.links)
        z, arm = links[:, :3, 2], hand[:3, 3] - links[:, :3, 3]
        jac = np.vstack([np.cross(z, arm).T, z.T])
        dq = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
        largest = float(np.max(np.abs(dq)))
        if largest > 0.2:
            dq *= 0.2 / largest
        q = np.clip(q + dq, lower, upper)
    return None
