"""Damped-least-squares inverse kinematics for a point and a pointing direction.

Enough for the simulator's start poses and for an expert that moves the camera or the
fingertips to a point while keeping them pointing down. The orientation task pins the
frame's forward axis and, because the rotation about that axis has a zero target too,
keeps the frame's yaw close to the seed's (the image does not spin between solutions).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from grasprt.kinematics import Kinematics

IKFrame = Literal["camera", "fingertips"]

# Metres of position error worth one radian of pointing error: balances the two tasks.
_ORIENTATION_WEIGHT = 0.3
_MAX_STEP_RAD = 0.2
# Stay this far inside the URDF limits, which have no soft margin of their own.
_LIMIT_MARGIN = 0.02


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (np.cross is slow for these small arrays)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _frame_point_axis(kin: Kinematics, q: np.ndarray, frame: IKFrame) -> tuple:
    poses = kin.poses(q)
    if frame == "camera":
        pose, parent = poses.camera, kin.profile.camera.parent_joint_index
        point = pose[:3, 3]
    else:
        pose, parent = poses.hand, kin.profile.hand.parent_joint_index
        point = poses.fingertips
    return point, pose[:3, 2], parent, poses.links


def ik_residual(
    kin: Kinematics,
    q: np.ndarray,
    target_pos: np.ndarray,
    target_forward: tuple[float, float, float] | np.ndarray = (0.0, 0.0, -1.0),
    frame: IKFrame = "camera",
) -> tuple[float, float]:
    """(position error in metres, pointing error in radians) of `q` for the IK task."""
    point, axis, _, _ = _frame_point_axis(kin, np.asarray(q, dtype=np.float64), frame)
    fwd = np.asarray(target_forward, dtype=np.float64)
    fwd = fwd / np.linalg.norm(fwd)
    angle = float(np.arccos(np.clip(axis @ fwd, -1.0, 1.0)))
    return float(np.linalg.norm(np.asarray(target_pos) - point)), angle


def solve_ik(
    kin: Kinematics,
    q_seed: np.ndarray,
    target_pos: np.ndarray | tuple[float, float, float],
    target_forward: tuple[float, float, float] | np.ndarray = (0.0, 0.0, -1.0),
    frame: IKFrame = "camera",
    max_iter: int = 100,
    pos_tol: float = 1e-5,
    angle_tol: float = 1e-4,
    damping: float = 0.02,
) -> np.ndarray:
    """Joint angles near `q_seed` putting `frame` at `target_pos`, its axis along `target_forward`.

    `frame` is the camera's optical frame (axis: its viewing direction) or the point
    between the fingertips (axis: the hand's approach direction). The result stays
    inside the joint limits; when the target is out of reach it is the closest pose
    found, so check :func:`ik_residual` where that matters.
    """
    if frame not in ("camera", "fingertips"):
        raise ValueError(f"unknown IK frame {frame!r}")
    target = np.asarray(target_pos, dtype=np.float64)
    fwd = np.asarray(target_forward, dtype=np.float64)
    fwd = fwd / np.linalg.norm(fwd)
    lower = np.asarray(kin.profile.lower) + _LIMIT_MARGIN
    upper = np.asarray(kin.profile.upper) - _LIMIT_MARGIN
    q = np.clip(np.asarray(q_seed, dtype=np.float64).copy(), lower, upper)
    n = q.size
    jac = np.zeros((6, n))
    err = np.zeros(6)
    for _ in range(max_iter):
        point, axis, parent, links = _frame_point_axis(kin, q, frame)
        err[:3] = target - point
        # Rotating by axis x fwd (its norm is the sine of the angle) turns axis toward fwd.
        err[3:] = _ORIENTATION_WEIGHT * _cross(axis, fwd)
        angle = float(np.arccos(np.clip(axis @ fwd, -1.0, 1.0)))
        if np.linalg.norm(err[:3]) < pos_tol and angle < angle_tol:
            break
        # Columns of the joints that move the frame: z_i x (p - o_i) and z_i.
        moving = np.stack(links[: parent + 1])
        z, arm = moving[:, :3, 2], point - moving[:, :3, 3]
        jac[:] = 0.0
        jac[:3, : parent + 1] = _cross(z, arm).T
        jac[3:, : parent + 1] = _ORIENTATION_WEIGHT * z.T
        dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), err)
        largest = float(np.max(np.abs(dq)))
        if largest > _MAX_STEP_RAD:
            dq *= _MAX_STEP_RAD / largest
        q = np.clip(q + dq, lower, upper)
    return q
