"""Pinhole geometry shared by the renderer and the truth mask.

Pixel convention (OpenCV's): pixel (u, v) is centred on integer coordinates and spans
[u - 0.5, u + 0.5]; a point in the optical frame projects to (fx x/z + cx, fy y/z + cy).
With cx = (width - 1) / 2 the optical axis passes through the middle of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from grasprt.types import Intrinsics

_CUBE = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)


@dataclass(frozen=True)
class View:
    """A pinhole camera (no distortion) at a pose: what one render or one mask sees."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    rot: np.ndarray  # 3x3, base-from-camera rotation
    pos: np.ndarray  # 3, camera centre in the base frame

    @staticmethod
    def of(intr: Intrinsics, camera_pose: np.ndarray) -> View:
        return View(
            intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height,
            camera_pose[:3, :3], camera_pose[:3, 3],
        )  # fmt: skip

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Base-frame points (N x 3, or 3) in the optical frame."""
        return (np.asarray(points) - self.pos) @ self.rot

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Optical-frame points (N x 3) to pixel coordinates (N x 2); z must be positive."""
        p = np.atleast_2d(points_cam)
        return np.stack(
            [self.fx * p[:, 0] / p[:, 2] + self.cx, self.fy * p[:, 1] / p[:, 2] + self.cy], 1
        )

    def box_around(self, centre_cam: np.ndarray, half: float) -> tuple[int, int, int, int] | None:
        """Clipped pixel box (u0, v0, u1, v1), end-exclusive, holding a cube's image; None if
        the cube is off-screen or reaches behind the camera."""
        corners = centre_cam + half * _CUBE
        if corners[:, 2].min() <= 1e-4:
            return None
        uv = self.project(corners)
        u0 = max(int(np.floor(uv[:, 0].min() + 0.5)), 0)
        v0 = max(int(np.floor(uv[:, 1].min() + 0.5)), 0)
        u1 = min(int(np.floor(uv[:, 0].max() + 0.5)) + 1, self.width)
        v1 = min(int(np.floor(uv[:, 1].max() + 0.5)) + 1, self.height)
        if u0 >= u1 or v0 >= v1:
            return None
        return u0, v0, u1, v1

    def sample_rays(self, box: tuple[int, int, int, int], ss: int) -> tuple[np.ndarray, np.ndarray]:
        """Optical-frame ray directions (x, y, 1) of `ss` x `ss` samples per pixel of `box`.

        x has shape (1, (u1 - u0) ss) and y ((v1 - v0) ss, 1): they broadcast to the
        sample grid. Samples sit at the centres of equal sub-pixel cells.
        """
        u0, v0, u1, v1 = box
        sub = (np.arange(ss) + 0.5) / ss - 0.5
        us = (np.arange(u0, u1)[:, None] + sub).ravel()
        vs = (np.arange(v0, v1)[:, None] + sub).ravel()
        return ((us - self.cx) / self.fx)[None, :], ((vs - self.cy) / self.fy)[:, None]


def ray_sphere(
    x: np.ndarray, y: np.ndarray, centre_cam: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rays (x, y, 1) against a sphere: hit flags, distance along each ray (in units of
    the ray's length; 0 on a miss), and the ray terms a = |d|^2 and b = d . centre."""
    cx, cy, cz = centre_cam
    a = x * x + y * y + 1.0
    b = x * cx + y * cy + cz
    disc = b * b - a * (cx * cx + cy * cy + cz * cz - radius * radius)
    hit = (disc >= 0.0) & (b > 0.0)
    t = np.where(hit, (b - np.sqrt(np.maximum(disc, 0.0))) / a, 0.0)
    return hit, t, a, b


def sphere_hits(x: np.ndarray, y: np.ndarray, centre_cam: np.ndarray, radius: float) -> np.ndarray:
    """Which rays (x, y, 1) hit a sphere."""
    return ray_sphere(x, y, centre_cam, radius)[0]


def ray_box_hits(
    x: np.ndarray, y: np.ndarray, centre_cam: np.ndarray, rot_cam: np.ndarray, half: np.ndarray
) -> np.ndarray:
    """Which rays (x, y, 1) from the camera centre pass through a box (slab test): its
    centre and axes (columns of `rot_cam`) in the optical frame, its half extents."""
    shape = np.broadcast_shapes(x.shape, y.shape)
    d = np.stack([np.broadcast_to(x, shape), np.broadcast_to(y, shape), np.ones(shape)], -1)
    d_box = d @ rot_cam  # ray directions along the box's axes
    o_box = -centre_cam @ rot_cam  # the camera centre in the box's frame
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (-half - o_box) / d_box
        t1 = (half - o_box) / d_box
    # A direction parallel to a slab: inside it (all t) or outside it (no t).
    inside = np.abs(o_box) <= half
    lo = np.where(np.isfinite(t0), np.minimum(t0, t1), np.where(inside, -np.inf, np.inf))
    hi = np.where(np.isfinite(t0), np.maximum(t0, t1), np.where(inside, np.inf, -np.inf))
    near, far = lo.max(axis=-1), hi.min(axis=-1)
    return (near <= far) & (far > 0.0)


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over non-overlapping k x k blocks (leading two axes divisible by k)."""
    h, w = a.shape[0] // k, a.shape[1] // k
    if k == 1:
        return a
    return a.reshape(h, k, w, k, *a.shape[2:]).sum(axis=(1, 3)) * (1.0 / (k * k))


def distortion_maps(
    intr: Intrinsics, max_scale: float = 2.0
) -> tuple[Intrinsics, np.ndarray, np.ndarray]:
    """How to turn a pinhole render into what a camera with `intr.dist` sees.

    Returns the pinhole canvas to render (same focal lengths, larger where the lens
    pulls in a wider view) and float32 maps for ``cv2.remap(canvas, mx, my)``: for each
    distorted output pixel, where its ray lands on the canvas.
    """
    us, vs = np.meshgrid(
        np.arange(intr.width, dtype=np.float64), np.arange(intr.height, dtype=np.float64)
    )
    pts = np.stack([us.ravel(), vs.ravel()], 1)[:, None, :]
    norm = cv2.undistortPoints(
        pts, intr.matrix(), np.asarray(intr.dist, np.float64),
        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-9),
    )[:, 0, :]  # fmt: skip
    pu = intr.fx * norm[:, 0] + intr.cx
    pv = intr.fy * norm[:, 1] + intr.cy
    # A lens model can fold far-off rays back; never render more than max_scale times wider.
    lo_u = max(np.floor(pu.min()), -(max_scale - 1) / 2 * intr.width)
    lo_v = max(np.floor(pv.min()), -(max_scale - 1) / 2 * intr.height)
    hi_u = min(np.ceil(pu.max()), (max_scale + 1) / 2 * intr.width)
    hi_v = min(np.ceil(pv.max()), (max_scale + 1) / 2 * intr.height)
    ou, ov = -min(lo_u, 0.0), -min(lo_v, 0.0)
    width = int(max(hi_u, intr.width - 1) + ou) + 1
    height = int(max(hi_v, intr.height - 1) + ov) + 1
    canvas = Intrinsics(width, height, intr.fx, intr.fy, intr.cx + ou, intr.cy + ov)
    mx = (pu + ou).reshape(intr.height, intr.width).astype(np.float32)
    my = (pv + ov).reshape(intr.height, intr.width).astype(np.float32)
    return canvas, mx, my
