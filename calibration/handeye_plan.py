"""Poses for hand-eye calibration: the camera around a board on the table.

Views are spread on a cap above the board: straight above it, then tilted by
increasing angles at several headings, each turned about the optical axis, so the
link turns about several axes (what makes the mount observable). Each view is solved
for the joints by damped least squares on the camera's full pose, and kept only if
it is within the joint limits (with a margin), keeps the wrist and fingertips above
the floor, and sees the whole board (projected through the URDF's mount). The kept
views are ordered so each move from the last is short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from grasprt.kinematics import Kinematics
from grasprt.types import Intrinsics

TILTS_DEG = (0.0, 15.0, 25.0, 35.0)
HEADINGS = 6
ROLLS_DEG = (-35.0, 0.0, 35.0)
_IK_ITERS = 200


@dataclass(frozen=True)
class PlanLimits:
    floor_z: float  # lowest allowed z of the wrist, hand and fingertips (base frame)
    joint_margin: float = 0.1  # rad inside the URDF limits
    image_margin_px: float = 10.0  # the board's outline this far inside the image


def look_at(eye: np.ndarray, target: np.ndarray, x_hint: np.ndarray) -> np.ndarray:
    """4x4 optical frame at `eye` looking at `target`, its x axis nearest `x_hint`."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = x_hint - (x_hint @ z) * z
    x = x / np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    pose[:3, 3] = eye
    return pose


def camera_ik(kin: Kinematics, q0: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, bool]:
    """Joints that put the URDF camera at `target` (4x4), from `q0`; and whether it got
    there (0.5 mm, 0.05 degree)."""
    lower, upper = np.asarray(kin.profile.lower), np.asarray(kin.profile.upper)
    q = np.asarray(q0, np.float64).copy()

    def error(q: np.ndarray) -> np.ndarray:
        cam = kin.poses(q).camera
        rot = cv2.Rodrigues(target[:3, :3] @ cam[:3, :3].T)[0].reshape(3)
        return np.concatenate([target[:3, 3] - cam[:3, 3], 0.3 * rot])

    e = error(q)
    for _ in range(_IK_ITERS):
        if np.linalg.norm(e[:3]) < 5e-4 and np.linalg.norm(e[3:]) / 0.3 < np.radians(0.05):
            return q, True
        jac = np.empty((6, q.size))
        for i in range(q.size):
            dq = q.copy()
            dq[i] += 1e-6
            jac[:, i] = (e - error(dq)) / 1e-6
        step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), e)
        step *= min(1.0, 0.3 / max(np.abs(step).max(), 1e-12))
        q = np.clip(q + step, lower, upper)
        e = error(q)
    return q, False


def _sees_board(
    kin: Kinematics, q: np.ndarray, outline: np.ndarray, intr: Intrinsics, margin: float
) -> bool:
    cam = kin.poses(q).camera
    pts = (outline - cam[:3, 3]) @ cam[:3, :3]
    if pts[:, 2].min() <= 0.05:
        return False
    u = intr.fx * pts[:, 0] / pts[:, 2] + intr.cx
    v = intr.fy * pts[:, 1] / pts[:, 2] + intr.cy
    return bool(
        u.min() >= margin
        and v.min() >= margin
        and u.max() <= intr.width - 1 - margin
        and v.max() <= intr.height - 1 - margin
    )


def candidate_views(
    centre: np.ndarray, distance: float, x_hint: np.ndarray
) -> list[np.ndarray]:
    """Camera poses on a cap above `centre`, `distance` away, looking at it."""
    views = []
    for k, tilt in enumerate(TILTS_DEG):
        headings = [0.0] if tilt == 0 else [360.0 * h / HEADINGS for h in range(HEADINGS)]
        for heading in headings:
            t, a = np.radians(tilt), np.radians(heading + 30.0 * k)
            eye = centre + distance * np.array(
                [np.sin(t) * np.cos(a), np.sin(t) * np.sin(a), np.cos(t)]
            )
            for roll in ROLLS_DEG:
                c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
                # Turn the hint about the vertical: the image turns about its axis.
                hint = np.array([c * x_hint[0] - s * x_hint[1], s * x_hint[0] + c * x_hint[1], 0])
                views.append(look_at(eye, centre, hint))
    return views


def plan_views(
    kin: Kinematics,
    q_start: np.ndarray,
    board_outline: np.ndarray,
    intr: Intrinsics,
    limits: PlanLimits,
    *,
    count: int = 15,
    distance: float = 0.3,
) -> list[np.ndarray]:
    """Up to `count` joint targets that each see the whole board from a different angle,
    in the order to visit them. `board_outline` is the board's four outer corners in
    the base frame."""
    centre = board_outline.mean(axis=0)
    start_cam = kin.poses(q_start).camera
    x_hint = start_cam[:3, 0].copy()
    x_hint[2] = 0.0
    lower = np.asarray(kin.profile.lower) + limits.joint_margin
    upper = np.asarray(kin.profile.upper) - limits.joint_margin
    found: list[np.ndarray] = []
    for view in candidate_views(centre, distance, x_hint):
        q, ok = camera_ik(kin, q_start, view)
        if not ok or np.any(q < lower) or np.any(q > upper):
            continue
        if kin.lowest_point_z(q) < limits.floor_z:
            continue
        if not _sees_board(kin, q, board_outline, intr, limits.image_margin_px):
            continue
        found.append(q)
    chosen = _spread(found, kin, count)
    return _tour(q_start, chosen)


def path_clear(kin: Kinematics, qa: np.ndarray, qb: np.ndarray, floor_z: float) -> bool:
    """The straight joint-space move from `qa` to `qb` (what the mover does, roughly)
    keeps the wrist, hand and fingertips above `floor_z`."""
    return all(
        kin.lowest_point_z(qa + s * (qb - qa)) >= floor_z for s in np.linspace(0, 1, 25)
    )


def route(
    kin: Kinematics, q_start: np.ndarray, views: Sequence[np.ndarray], floor_z: float
) -> list[tuple[np.ndarray, bool]]:
    """The moves to make: (joints, is a view). A view whose straight path from the last
    one would dip toward the floor is reached through the start pose instead; one that
    cannot be reached from the start either is dropped."""
    moves: list[tuple[np.ndarray, bool]] = []
    at = np.asarray(q_start)
    for q in views:
        if not path_clear(kin, at, q, floor_z):
            if not path_clear(kin, q_start, q, floor_z):
                continue
            moves.append((np.asarray(q_start), False))
        moves.append((q, True))
        at = q
    if not path_clear(kin, at, q_start, floor_z):
        moves.append((views[0] if len(views) else np.asarray(q_start), False))
    moves.append((np.asarray(q_start), False))
    return moves


def _spread(found: Sequence[np.ndarray], kin: Kinematics, count: int) -> list[np.ndarray]:
    """`count` of the views, each next the one turned furthest from those chosen."""
    if len(found) <= count:
        return list(found)
    rots = [kin.poses(q).camera[:3, :3] for q in found]
    chosen = [0]
    while len(chosen) < count:
        def nearest(i: int) -> float:
            return min(
                float(np.arccos(np.clip((np.trace(rots[i].T @ rots[j]) - 1) / 2, -1, 1)))
                for j in chosen
            )

        rest = [i for i in range(len(found)) if i not in chosen]
        chosen.append(max(rest, key=nearest))
    return [found[i] for i in chosen]


def _tour(q_start: np.ndarray, qs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Nearest-neighbour order in joint space from the start."""
    rest, order, at = list(qs), [], np.asarray(q_start)
    while rest:
        i = int(np.argmin([np.abs(q - at).max() for q in rest]))
        at = rest.pop(i)
        order.append(at)
    return order
