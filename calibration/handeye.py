"""Hand-eye calibration: where the camera sits on the link it rides on.

Each pose gives the link's pose in the robot's base frame (forward kinematics of the
joint angles) and the board's pose in the camera (``solvePnP`` of its corners). With
the board fixed on the table, the camera's pose in the link, X, solves A X = X B
(``cv2.calibrateHandEye``); each of OpenCV's five methods solves it its own way and
their spread is reported. The answer is then refined by least squares over every
corner of every view (X and the board's pose in the base frame, 12 numbers), which
also gives the residuals in pixels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from grasprt.calibration.boards import Detection
from grasprt.calibration.handeye_methods import NUMPY_METHODS, motions
from grasprt.calibration.mount import rotation_angle_deg
from grasprt.errors import ConfigError
from grasprt.types import Intrinsics

METHODS = {
    "TSAI": cv2.CALIB_HAND_EYE_TSAI,
    "PARK": cv2.CALIB_HAND_EYE_PARK,
    "HORAUD": cv2.CALIB_HAND_EYE_HORAUD,
    "ANDREFF": cv2.CALIB_HAND_EYE_ANDREFF,
    "DANIILIDIS": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
# Which solves there are: OpenCV's where the installed cv2 binds them (not 5.0.0.93).
OPENCV_HAND_EYE = hasattr(cv2, "calibrateHandEye")
MIN_POSES = 5
# The link must turn this much between some two poses, about two axes this far
# apart: a rotation about one axis alone leaves the mount along it unknown.
MIN_ROTATION_DEG = 15.0
MIN_AXIS_SPREAD_DEG = 20.0


@dataclass(frozen=True)
class Observation:
    """One pose: the camera link in the base frame and the board seen from it."""

    link: np.ndarray  # 4x4, base from the camera's parent link
    detection: Detection
    q: tuple[float, ...] = ()


@dataclass
class HandEyeResult:
    mount: np.ndarray  # 4x4 refined camera optical frame in the link
    board: np.ndarray  # 4x4 board in the base frame
    methods: dict[str, np.ndarray]  # each OpenCV method's answer
    # Reprojection error of every view's corners with the refined mount (px, RMS).
    view_rms_px: list[float] = field(default_factory=list)
    rms_px: float = 0.0
    # The largest pairwise rotation between poses, and between their rotation axes.
    rotation_spread_deg: float = 0.0
    axis_spread_deg: float = 0.0

    def agreement(self) -> dict[str, dict[str, float]]:
        """Each method against the refined mount: mm and degrees apart."""
        return {name: _apart(x, self.mount) for name, x in self.methods.items()}


def _apart(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = np.linalg.inv(b) @ a
    return {
        "mm": float(np.linalg.norm(a[:3, 3] - b[:3, 3]) * 1000),
        "deg": rotation_angle_deg(d[:3, :3]),
    }


def _pose(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = cv2.Rodrigues(np.asarray(rvec, np.float64).reshape(3))[0]
    t[:3, 3] = np.asarray(tvec, np.float64).reshape(3)
    return t


def _vec(t: np.ndarray) -> np.ndarray:
    return np.concatenate([cv2.Rodrigues(t[:3, :3])[0].reshape(3), t[:3, 3]])


def _dist(intr: Intrinsics) -> np.ndarray:
    return np.asarray(intr.dist, np.float64) if intr.dist else np.zeros(5)


def board_in_camera(det: Detection, intr: Intrinsics) -> np.ndarray:
    """4x4 camera from board, by PnP on the detected corners."""
    ok, rvec, tvec = cv2.solvePnP(
        det.object_points.astype(np.float64),
        det.image_points.astype(np.float64),
        intr.matrix(),
        _dist(intr),
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        raise ConfigError("hand-eye: solvePnP failed on a detected board (corners degenerate?)")
    return _pose(rvec, tvec)


def rotation_spread(links: Sequence[np.ndarray]) -> tuple[float, float]:
    """(largest rotation between two poses, largest angle between two rotation axes of
    pose pairs that turn at least MIN_ROTATION_DEG / 3), degrees."""
    best, axes = 0.0, []
    for i in range(len(links)):
        for j in range(i + 1, len(links)):
            r = links[i][:3, :3].T @ links[j][:3, :3]
            angle = rotation_angle_deg(r)
            best = max(best, angle)
            if angle >= MIN_ROTATION_DEG / 3:
                axis = cv2.Rodrigues(r)[0].reshape(3)
                axes.append(links[i][:3, :3] @ axis / np.linalg.norm(axis))  # base frame
    spread = 0.0
    for i in range(len(axes)):
        for j in range(i + 1, len(axes)):
            c = abs(float(axes[i] @ axes[j]))  # an axis and its opposite are one axis
            spread = max(spread, float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))))
    return best, spread


def check_spread(links: Sequence[np.ndarray]) -> tuple[float, float]:
    if len(links) < MIN_POSES:
        raise ConfigError(
            f"hand-eye: {len(links)} poses with the board detected, at least {MIN_POSES} "
            "needed (more poses, or a board the camera sees whole)"
        )
    turn, axes = rotation_spread(links)
    if turn < MIN_ROTATION_DEG or axes < MIN_AXIS_SPREAD_DEG:
        raise ConfigError(
            f"hand-eye: poses too alike to solve: the camera's link turns at most {turn:.1f} deg "
            f"between poses and about axes at most {axes:.1f} deg apart (needs "
            f"{MIN_ROTATION_DEG:g} and {MIN_AXIS_SPREAD_DEG:g}): tilt the hand more, "
            "about different axes"
        )
    return turn, axes


def _residuals(
    params: np.ndarray, obs: Sequence[Observation], intr: Intrinsics
) -> np.ndarray:
    mount, board = _pose(params[:3], params[3:6]), _pose(params[6:9], params[9:12])
    k, dist = intr.matrix(), _dist(intr)
    out = []
    for o in obs:
        cam_from_board = np.linalg.inv(o.link @ mount) @ board
        rvec = cv2.Rodrigues(cam_from_board[:3, :3])[0]
        pts, _ = cv2.projectPoints(
            o.detection.object_points.astype(np.float64), rvec, cam_from_board[:3, 3], k, dist
        )
        out.append((pts.reshape(-1, 2) - o.detection.image_points).ravel())
    return np.concatenate(out)


def _refine(params: np.ndarray, obs: Sequence[Observation], intr: Intrinsics) -> np.ndarray:
    """Levenberg-Marquardt on the reprojection error, with a numerical Jacobian."""
    lam = 1e-3
    r = _residuals(params, obs, intr)
    cost = float(r @ r)
    steps = np.array([1e-6] * 3 + [1e-6] * 3 + [1e-6] * 3 + [1e-6] * 3)
    for _ in range(50):
        jac = np.empty((r.size, params.size))
        for i in range(params.size):
            p = params.copy()
            p[i] += steps[i]
            jac[:, i] = (_residuals(p, obs, intr) - r) / steps[i]
        jtj, jtr = jac.T @ jac, jac.T @ r
        while True:
            delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), -jtr)
            trial = params + delta
            r_trial = _residuals(trial, obs, intr)
            c_trial = float(r_trial @ r_trial)
            if c_trial < cost:
                params, r, lam = trial, r_trial, max(lam / 10, 1e-9)
                break
            lam *= 10
            if lam > 1e8:
                return params
        if cost - c_trial < 1e-12 * max(cost, 1.0):
            cost = c_trial
            break
        cost = c_trial
    return params


def solve_methods(
    links: Sequence[np.ndarray], cams: Sequence[np.ndarray], *, opencv: bool | None = None
) -> dict[str, np.ndarray]:
    """X by each method: OpenCV's five where cv2 has them, else grasprt's numpy four;
    either way only those whose X fits the motions (`_consistent`)."""
    if opencv is None:
        opencv = OPENCV_HAND_EYE
    pairs = motions(links, cams)
    if not opencv:
        return _consistent({name: solve(pairs) for name, solve in NUMPY_METHODS.items()}, pairs)
    args = (
        [t[:3, :3] for t in links],
        [t[:3, 3] for t in links],
        [t[:3, :3] for t in cams],
        [t[:3, 3] for t in cams],
    )
    out = {}
    for name, flag in METHODS.items():
        try:
            r, t = cv2.calibrateHandEye(*args, method=flag)
        except cv2.error:  # OpenCV 4.14's ANDREFF fails on some well-posed sets
            continue
        out[name] = np.eye(4)
        out[name][:3, :3], out[name][:3, 3] = r, np.asarray(t).reshape(3)
    return _consistent(out, pairs)


def motion_residual_mm(x: np.ndarray, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Median translation residual of A X = X B over the motions, in millimetres."""
    return float(
        np.median([np.linalg.norm((a @ x - x @ b)[:3, 3]) for a, b in pairs]) * 1000.0
    )


def _consistent(
    methods: dict[str, np.ndarray],
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    floor_mm: float = 2.0,
    factor: float = 10.0,
) -> dict[str, np.ndarray]:
    """The methods whose X fits the motions about as well as the best one does.

    OpenCV's ANDREFF (4.14 and 5.1, as pip installs them now) can return the right
    rotation with a translation 334 mm off on an exact, well-posed set, and no error;
    such a result is left out as one that raises is, so it cannot pull the medoid."""
    if not methods:
        return methods
    residual = {name: motion_residual_mm(x, pairs) for name, x in methods.items()}
    limit = max(floor_mm, factor * min(residual.values()))
    return {name: x for name, x in methods.items() if residual[name] <= limit}


def solve_hand_eye(obs: Sequence[Observation], intr: Intrinsics) -> HandEyeResult:
    """The camera's optical frame in its link, from poses that saw the board."""
    links = [o.link for o in obs]
    turn, axes = check_spread(links)
    cams = [board_in_camera(o.detection, intr) for o in obs]
    methods = solve_methods(links, cams)
    # Start from the method that agrees best with the others (the medoid), and the
    # board where that puts it on average.
    names = list(methods)
    score = [
        sum(_apart(methods[a], methods[b])["deg"] for b in names) for a in names
    ]
    start = methods[names[int(np.argmin(score))]]
    boards = [link @ start @ cam for link, cam in zip(links, cams, strict=True)]
    board0 = boards[0].copy()
    board0[:3, 3] = np.mean([b[:3, 3] for b in boards], axis=0)
    params = _refine(np.concatenate([_vec(start), _vec(board0)]), obs, intr)
    mount, board = _pose(params[:3], params[3:6]), _pose(params[6:9], params[9:12])
    res = _residuals(params, obs, intr).reshape(-1, 2)
    sizes = np.cumsum([0] + [len(o.detection.image_points) for o in obs])
    per_view = [
        float(np.sqrt(np.mean(np.sum(res[a:b] ** 2, axis=1))))
        for a, b in itertools.pairwise(sizes)
    ]
    rms = float(np.sqrt(np.mean(np.sum(res**2, axis=1))))
    return HandEyeResult(mount, board, methods, per_view, rms, turn, axes)
