"""Classic solutions of the hand-eye equation A X = X B, in numpy.

OpenCV has them all in ``cv2.calibrateHandEye``, but the opencv-python 5.0.0.93 wheels
lack the binding (opencv/opencv#29565, fixed by #29584 after that release). grasprt
calls OpenCV's five when the installed cv2 has them, else these four, written from the
papers the same way OpenCV does (every pair of poses is one motion):

* TSAI: Tsai & Lenz 1989, modified Rodrigues vectors, then the translation.
* PARK: Park & Martin 1994, rotation logarithms and a polar decomposition.
* HORAUD: Horaud & Dornaika 1995, the unit quaternion as a smallest eigenvector.
* ANDREFF: Andreff et al. 1999, the rotation as the null space of a Kronecker system.

Each takes the link-in-base poses (gripper2base) and board-in-camera poses
(target2cam) as 4x4 arrays and returns X, the camera in the link.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

Motions = list[tuple[np.ndarray, np.ndarray]]


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def motions(links: Sequence[np.ndarray], cams: Sequence[np.ndarray]) -> Motions:
    """(A, B) for every pair i < j: A = Hg_j^-1 Hg_i, B = Hc_j Hc_i^-1, so A X = X B."""
    out = []
    for i in range(len(links)):
        for j in range(i + 1, len(links)):
            a = np.linalg.inv(links[j]) @ links[i]
            b = cams[j] @ np.linalg.inv(cams[i])
            out.append((a, b))
    return out


def _translation(pairs: Motions, rx: np.ndarray) -> np.ndarray:
    """(R_A - I) t = R_X t_B - t_A, all motions at once, least squares."""
    lhs = np.vstack([a[:3, :3] - np.eye(3) for a, _ in pairs])
    rhs = np.concatenate([rx @ b[:3, 3] - a[:3, 3] for a, b in pairs])
    return np.linalg.lstsq(lhs, rhs, rcond=None)[0]


def _pose(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    x = np.eye(4)
    x[:3, :3], x[:3, 3] = r, t
    return x


def _orthonormal(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    return r if np.linalg.det(r) > 0 else u @ np.diag([1, 1, -1]) @ vt


def _rotvec(r: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.ascontiguousarray(r))[0].reshape(3)


def tsai(pairs: Motions) -> np.ndarray:
    lhs, rhs = [], []
    for a, b in pairs:
        pg, pc = _modified_rodrigues(a[:3, :3]), _modified_rodrigues(b[:3, :3])
        lhs.append(_skew(pg + pc))
        rhs.append(pc - pg)
    p = np.linalg.lstsq(np.vstack(lhs), np.concatenate(rhs), rcond=None)[0]
    p = 2 * p / np.sqrt(1 + p @ p)
    n2 = p @ p
    rx = (1 - n2 / 2) * np.eye(3) + 0.5 * (np.outer(p, p) + np.sqrt(4 - n2) * _skew(p))
    return _pose(rx, _translation(pairs, rx))


def _modified_rodrigues(r: np.ndarray) -> np.ndarray:
    v = _rotvec(r)
    theta = np.linalg.norm(v)
    return np.zeros(3) if theta < 1e-12 else 2 * np.sin(theta / 2) * v / theta


def park(pairs: Motions) -> np.ndarray:
    m = np.zeros((3, 3))
    for a, b in pairs:
        m += np.outer(_rotvec(b[:3, :3]), _rotvec(a[:3, :3]))
    w, v = np.linalg.eigh(m.T @ m)
    rx = v @ np.diag(1 / np.sqrt(w)) @ v.T @ m.T
    rx = _orthonormal(rx)
    return _pose(rx, _translation(pairs, rx))


def _quat(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) with w >= 0."""
    v = _rotvec(r)
    theta = np.linalg.norm(v)
    axis = v / theta if theta > 1e-12 else np.zeros(3)
    return np.concatenate([[np.cos(theta / 2)], np.sin(theta / 2) * axis])


def _left(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array([[w, -x, -y, -z], [x, w, -z, y], [y, z, w, -x], [z, -y, x, w]])


def _right(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array([[w, -x, -y, -z], [x, w, z, -y], [y, -z, w, x], [z, y, -x, w]])


def _rot_of_quat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def horaud(pairs: Motions) -> np.ndarray:
    s = np.zeros((4, 4))
    for a, b in pairs:
        d = _left(_quat(a[:3, :3])) - _right(_quat(b[:3, :3]))
        s += d.T @ d
    q = np.linalg.eigh(s)[1][:, 0]
    rx = _rot_of_quat(q)
    return _pose(rx, _translation(pairs, rx))


def andreff(pairs: Motions) -> np.ndarray:
    # Row-major vec: vec(R_A X) = (R_A kron I) vec X, vec(X R_B) = (I kron R_B^T) vec X.
    eye = np.eye(3)
    m = np.vstack([np.kron(a[:3, :3], eye) - np.kron(eye, b[:3, :3].T) for a, b in pairs])
    v = np.linalg.svd(m)[2][-1].reshape(3, 3)
    v = v / np.cbrt(np.linalg.det(v))  # scale and sign: det(X) = 1
    rx = _orthonormal(v)
    return _pose(rx, _translation(pairs, rx))


NUMPY_METHODS: dict[str, Callable[[Motions], np.ndarray]] = {
    "TSAI": tsai,
    "PARK": park,
    "HORAUD": horaud,
    "ANDREFF": andreff,
}
