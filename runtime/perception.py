"""The perception-health gate: is the segmenter's mask fit to act on?

The controller acts on whatever mask it is given; a mask that looks wrong is a reason
to hold, like a stale frame. Four checks, each a named reason in the cycle record and
the run's summary (`perception_holds`):

    lost    the mask has been empty `lost_cycles` cycles in a row after the target was
            seen this episode
    blobs   a second blob of at least `min_blob_px` and `blob_ratio` of the largest:
            two candidate targets (8-connected components, cv2.connectedComponents)
    area    the mask's area, as a fraction of its pixels, outside the bundle's
            provenance `mask_area` range, else `[perception] area`, else (0, 0.25]
    jump    the largest blob's centroid moved further than the arm could have moved
            the image of a still target since the last accepted mask

The jump bound, from the measured joint positions (so it needs no model of the arm's
dynamics). Between two cycles each joint i turns by |dq_i| about its axis, which
passes through its link frame's origin o_i. The camera then turns by at most
sum |dq_i| (a composition of rotations turns by no more than the sum of its angles) and
moves by at most sum |dq_i| * rho_i, rho_i = |p_camera - o_i| (to first order in dq).
The bearing of a still point at least `near_m` from the camera changes by at most

    beta = sum |dq_i| + sum |dq_i| rho_i / near_m  (+ target_speed * dt / near_m)

and within the image, where a ray at angle a from the optical axis lands at f tan a,
a bearing change beta moves the pixel by at most f (1 + tan^2 a_max) beta, a_max the
angle of the image corner furthest from the principal point (the largest derivative of
f tan a inside the field of view; the path between two in-view bearings stays in view).
Frames and states are not taken at the same instant, so one more cycle's worth of motion
(the largest single-cycle beta since the reference) is added, and `jitter_px` for the
segmentation's own noise. The bound is loose while the arm moves fast and tight while it
is still: it catches a mask that leaves its target for another while the arm hardly
moves, the case none of the other checks sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from grasprt.config import PerceptionSettings
from grasprt.kinematics import Kinematics
from grasprt.types import Intrinsics

CHECKS = ("lost", "blobs", "area", "jump")
# Any non-empty mask up to a quarter of the view: a segmenter that lights up most of
# the image is not seeing one sphere.
DEFAULT_AREA = (0.0, 0.25)


@dataclass(frozen=True)
class PerceptionHold:
    check: str  # one of CHECKS
    detail: str

    @property
    def reason(self) -> str:
        return f"perception: {self.check} ({self.detail})"


def mask_gain(camera: Intrinsics, height: int, width: int) -> float:
    """Mask pixels per radian of bearing change, at worst: f (1 + tan^2 a_max)."""
    sx, sy = width / camera.width, height / camera.height
    fx, fy = camera.fx * sx, camera.fy * sy
    cx, cy = (camera.cx + 0.5) * sx - 0.5, (camera.cy + 0.5) * sy - 0.5
    corners = [(-0.5, -0.5), (width - 0.5, -0.5), (-0.5, height - 0.5), (width - 0.5, height - 0.5)]
    tan_max = max(math.hypot((x - cx) / fx, (y - cy) / fy) for x, y in corners)
    return max(fx, fy) * (1.0 + tan_max**2)


def bearing_step(kin: Kinematics, q0: np.ndarray, q1: np.ndarray, near_m: float) -> float:
    """The most a still point's bearing (rad) can change from the camera at q0 to q1."""
    dq = np.abs(np.asarray(q1, dtype=np.float64) - np.asarray(q0, dtype=np.float64))
    rho = np.maximum(_lever_arms(kin, q0), _lever_arms(kin, q1))
    return float(dq.sum() + (dq * rho).sum() / near_m)


def _lever_arms(kin: Kinematics, q: np.ndarray) -> np.ndarray:
    poses = kin.poses(np.asarray(q, dtype=np.float64))
    cam = poses.camera[:3, 3]
    return np.array([np.linalg.norm(cam - link[:3, 3]) for link in poses.links])


@dataclass(frozen=True)
class Blobs:
    areas: np.ndarray  # descending, px
    centroid: tuple[float, float] | None  # of the largest blob, (x, y) mask px
    total: int


def blobs(mask: np.ndarray) -> Blobs:
    m = np.ascontiguousarray(mask > 0.5, dtype=np.uint8)
    n, _, stats, centroids = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return Blobs(np.zeros(0, dtype=np.int64), None, 0)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-areas, kind="stable")
    cx, cy = centroids[1 + order[0]]
    return Blobs(areas[order], (float(cx), float(cy)), int(areas.sum()))


class PerceptionGate:
    """One episode's checks; :meth:`check` once per cycle, before the controller acts."""

    def __init__(
        self,
        settings: PerceptionSettings,
        kin: Kinematics,
        camera: Intrinsics,
        mask_shape: tuple[int, int],
        bundle_area: tuple[float, float] | None = None,
    ) -> None:
        self.settings = settings
        self.kin = kin
        self.mask_shape = mask_shape
        self.gain = mask_gain(camera, *mask_shape)
        self.area = settings.area or bundle_area or DEFAULT_AREA
        self.reset()

    def reset(self) -> None:
        """A new episode: nothing seen yet."""
        self._seen = False
        self._empty = 0
        self._ref: tuple[float, float] | None = None
        self._ref_stamp = 0.0
        self._beta = 0.0  # bearing bound accumulated since the reference centroid
        self._beta_max = 0.0  # its largest single cycle
        self._last_q: np.ndarray | None = None

    def check(self, mask: np.ndarray, q: np.ndarray, stamp: float) -> PerceptionHold | None:
        """None: act on this mask. `mask` is (H, W) or (1, 1, H, W); `q` measured now;
        `stamp` the frame's capture time."""
        if not self.settings.enabled:
            return None
        self._move(q)
        found = blobs(np.reshape(mask, self.mask_shape))
        if found.centroid is None:
            if not self._seen:
                return None
            self._empty += 1
            if self._empty >= self.settings.lost_cycles:
                return PerceptionHold("lost", f"empty for {self._empty} cycles")
            return None
        self._empty = 0
        hold = self._area(found) or self._blobs(found) or self._jump(found, stamp)
        if hold is None:
            self._seen = True
            self._ref, self._ref_stamp = found.centroid, stamp
            self._beta = self._beta_max = 0.0
        return hold

    def jump_bound_px(self, stamp: float) -> float:
        """The largest centroid move (mask px) accepted now from the reference."""
        s = self.settings
        dt = max(0.0, stamp - self._ref_stamp)
        beta = self._beta + self._beta_max + s.target_speed * dt / s.near_m
        return self.gain * beta + s.jitter_px

    def _move(self, q: np.ndarray) -> None:
        q = np.asarray(q, dtype=np.float64)
        if self._last_q is not None:
            step = bearing_step(self.kin, self._last_q, q, self.settings.near_m)
            self._beta += step
            self._beta_max = max(self._beta_max, step)
        self._last_q = q.copy()

    def _area(self, found: Blobs) -> PerceptionHold | None:
        low, high = self.area
        frac = found.total / (self.mask_shape[0] * self.mask_shape[1])
        if frac < low or frac > high:
            return PerceptionHold("area", f"{frac:.4f} of the mask, outside [{low:g}, {high:g}]")
        return None

    def _blobs(self, found: Blobs) -> PerceptionHold | None:
        s = self.settings
        big = found.areas[0]
        rivals = found.areas[1:]
        rivals = rivals[(rivals >= s.min_blob_px) & (rivals >= s.blob_ratio * big)]
        if rivals.size:
            sizes = ", ".join(str(int(a)) for a in [big, *rivals])
            return PerceptionHold("blobs", f"{1 + rivals.size} blobs of {sizes} px")
        return None

    def _jump(self, found: Blobs, stamp: float) -> PerceptionHold | None:
        if self._ref is None or found.centroid is None:
            return None
        moved = math.dist(found.centroid, self._ref)
        bound = self.jump_bound_px(stamp)
        if moved > bound:
            return PerceptionHold("jump", f"centroid moved {moved:.1f} px, bound {bound:.1f}")
        return None
