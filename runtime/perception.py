"""The perception-health gate: is the segmenter's mask fit to act on?

The controller acts on whatever mask it is given; a mask that looks wrong is a reason
to hold, like a stale frame. Four checks, each a named reason in the cycle record and
the run's summary (`perception_holds`):

    lost    the mask has been empty `lost_cycles` cycles in a row after the target was
            seen this episode, the gripper open (below `lost_ignored_closed`: closed
            fingers hide what they hold). Where the camera knows the hand's own
            footprint in the view (`Frame.hand_mask`), a target last seen at its
            edge has gone behind the hand, not away: up to `hidden_cycles` such
            cycles are no loss (the arm moving on brings it back into view; holding
            still would keep it hidden)
    blobs   a second blob of at least `min_blob_px` and `blob_ratio` of the target's,
            where the target could be: two candidates the gate cannot tell apart
            (8-connected components, cv2.connectedComponents). With `edge_rivals`
            off (the default) a blob that touches the mask's border is no rival: an
            object cut by the edge of the view, whose size says nothing (the reference
            bundle's distractors come into view there, docs/perception.md)
    area    the mask's area, as a fraction of its pixels, outside the bundle's
            provenance `mask_area` range, else `[perception] area`, else (0, 0.25]
    jump    no blob lies where the target could be: further from the last accepted
            centroid than the arm could have moved the image of a still target

The target is tracked: once a mask was accepted, its blob is the largest one within
the jump bound of the last accepted centroid. A blob beyond the bound cannot be the
target (a distractor coming into view) and is no rival; before the first accepted mask
every blob is a candidate.

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
from dataclasses import dataclass, field

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
    return _bearing(q0, q1, _lever_arms(kin, q0), _lever_arms(kin, q1), near_m)


def _bearing(q0: object, q1: object, rho0: object, rho1: object, near_m: float) -> float:
    """Arrays or lists. In Python floats: the gate runs right after the models, whose
    traffic has taken the caches, and there each numpy call on a 7-vector costs tens of
    microseconds. The sums run in order from 0.0, as numpy's do on 7 numbers."""
    dq = [abs(b - a) for a, b in zip(_floats(q0), _floats(q1), strict=True)]
    lever = [max(a, b) for a, b in zip(_floats(rho0), _floats(rho1), strict=True)]
    return _sum(dq) + _sum([d * r for d, r in zip(dq, lever, strict=True)]) / near_m


def _floats(v: object) -> list[float]:
    return v if isinstance(v, list) else np.asarray(v, dtype=np.float64).tolist()


def _sum(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


def _lever_arms(kin: Kinematics, q: np.ndarray) -> list[float]:
    """The camera's distance to each joint's origin at `q` (the numbers np.linalg.norm
    gives on the same differences: squares summed in order, one correctly rounded root)."""
    poses = kin.poses(np.asarray(q, dtype=np.float64))
    cx, cy, cz = poses.camera[:3, 3].tolist()
    out = []
    for link in poses.links:
        x, y, z = link[:3, 3].tolist()
        dx, dy, dz = x - cx, y - cy, z - cz
        out.append(math.sqrt(dx * dx + dy * dy + dz * dz))
    return out


@dataclass(frozen=True)
class Blobs:
    areas: np.ndarray  # descending, px
    centroids: np.ndarray  # (k, 2) (x, y) mask px, in the same order
    total: int
    edge: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # touches the border

    @property
    def centroid(self) -> tuple[float, float] | None:
        """The largest blob's centroid; None: an empty mask."""
        if self.areas.size == 0:
            return None
        return float(self.centroids[0, 0]), float(self.centroids[0, 1])


@dataclass(frozen=True)
class _Found:
    """:class:`Blobs` as Python lists, largest first: what the gate works on."""

    areas: list[int]
    centroids: list[list[float]]  # [x, y] mask px
    edge: list[bool]

    @property
    def total(self) -> int:
        return sum(self.areas)


def _components(mask: np.ndarray) -> _Found:
    m = np.ascontiguousarray(mask > 0.5, dtype=np.uint8)
    # BBDT: the default algorithm's labels, stats and centroids (checked equal on
    # thousands of random masks, tests/runtime/test_perception.py) at a third of the
    # cost with the stats on a 100 x 100 mask.
    n, _, stats, centroids = cv2.connectedComponentsWithStatsWithAlgorithm(
        m, 8, cv2.CV_32S, cv2.CCL_BBDT
    )
    if n <= 1:
        return _Found([], [], [])
    # A few blobs: Python lists from here on (one conversion each), not a dozen numpy
    # calls on cold caches. sorted() is stable, as argsort(kind="stable") is.
    rows, cents = stats.tolist()[1:], centroids.tolist()[1:]
    order = sorted(range(n - 1), key=lambda i: -rows[i][cv2.CC_STAT_AREA])
    height, width = m.shape
    return _Found(
        [rows[i][cv2.CC_STAT_AREA] for i in order],
        [cents[i] for i in order],
        [_touches_edge(rows[i], width, height) for i in order],
    )


def _touches_edge(row: list[int], width: int, height: int) -> bool:
    x, y = row[cv2.CC_STAT_LEFT], row[cv2.CC_STAT_TOP]
    return x == 0 or y == 0 or x + row[cv2.CC_STAT_WIDTH] == width or (
        y + row[cv2.CC_STAT_HEIGHT] == height
    )


def blobs(mask: np.ndarray) -> Blobs:
    found = _components(mask)
    if not found.areas:
        return Blobs(np.zeros(0, dtype=np.int64), np.zeros((0, 2)), 0)
    return Blobs(
        np.asarray(found.areas, dtype=np.int64),
        np.asarray(found.centroids, dtype=np.float64),
        found.total,
        np.asarray(found.edge, dtype=bool),
    )


def _nearest(found: _Found, point: tuple[float, float]) -> int:
    px, py = point
    return min(
        range(len(found.areas)),
        key=lambda i: (found.centroids[i][0] - px) ** 2 + (found.centroids[i][1] - py) ** 2,
    )


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
        self._ref_px = 0.0  # the accepted target's area
        self._ref_stamp = 0.0
        self._beta = 0.0  # bearing bound accumulated since the reference centroid
        self._beta_max = 0.0  # its largest single cycle
        self._last_q: list[float] | None = None
        self._last_rho: list[float] | None = None

    def check(
        self,
        mask: np.ndarray,
        q: np.ndarray,
        stamp: float,
        gripper: float = 0.0,
        hand: np.ndarray | None = None,
    ) -> PerceptionHold | None:
        """None: act on this mask. `mask` is (H, W) or (1, 1, H, W); `q` and `gripper`
        measured now; `stamp` the frame's capture time; `hand` the frame's hand mask."""
        if not self.settings.enabled:
            return None
        self._move(q)
        found = _components(np.reshape(mask, self.mask_shape))
        if not found.areas:
            if not self._seen:
                return None
            self._empty += 1
            closed = gripper >= self.settings.lost_ignored_closed
            if self._empty < self.settings.lost_cycles or closed or self._behind_hand(hand):
                return None
            return PerceptionHold("lost", f"empty for {self._empty} cycles")
        self._empty = 0
        hold = self._area(found)
        if hold is None:
            target, hold = self._track(found, stamp)
            if hold is None:
                self._seen = True
                self._ref, self._ref_stamp = target, stamp
                self._ref_px = float(found.areas[_nearest(found, target)])
                self._beta = self._beta_max = 0.0
        return hold

    def _behind_hand(self, hand: np.ndarray | None) -> bool:
        """The target vanished at the hand's edge, at most `hidden_cycles` ago: within
        its own radius plus `jitter_px` of the last accepted centroid, the hand covers
        some cell."""
        if hand is None or self._ref is None or self._empty > self.settings.hidden_cycles:
            return False
        reach = math.sqrt(self._ref_px / math.pi) + self.settings.jitter_px
        rows, cols = np.nonzero(np.reshape(hand, self.mask_shape))
        cx, cy = self._ref
        return bool(np.any((cols - cx) ** 2 + (rows - cy) ** 2 <= reach * reach))

    def jump_bound_px(self, stamp: float) -> float:
        """The largest centroid move (mask px) accepted now from the reference."""
        s = self.settings
        dt = max(0.0, stamp - self._ref_stamp)
        beta = self._beta + self._beta_max + s.target_speed * dt / s.near_m
        return self.gain * beta + s.jitter_px

    def _move(self, q: np.ndarray) -> None:
        # One forward kinematics a cycle: the last cycle's lever arms are kept.
        q = np.asarray(q, dtype=np.float64)
        now_q, rho = q.tolist(), _lever_arms(self.kin, q)
        if self._last_q is not None:
            step = _bearing(self._last_q, now_q, self._last_rho, rho, self.settings.near_m)
            self._beta += step
            self._beta_max = max(self._beta_max, step)
        self._last_q, self._last_rho = now_q, rho

    def _area(self, found: _Found) -> PerceptionHold | None:
        low, high = self.area
        frac = found.total / (self.mask_shape[0] * self.mask_shape[1])
        if frac < low or frac > high:
            return PerceptionHold("area", f"{frac:.4f} of the mask, outside [{low:g}, {high:g}]")
        return None

    def _track(
        self, found: _Found, stamp: float
    ) -> tuple[tuple[float, float], PerceptionHold | None]:
        """The target's blob (its centroid), or why the mask is refused."""
        s = self.settings
        candidates = list(range(len(found.areas)))
        if self._ref is not None:
            bound = self.jump_bound_px(stamp)
            rx, ry = self._ref
            # np.hypot on each pair: the same numbers as on the arrays (C hypot per element).
            dist = [float(np.hypot(x - rx, y - ry)) for x, y in found.centroids]
            candidates = [i for i, d in enumerate(dist) if d <= bound]
            if not candidates:
                detail = f"nearest blob {min(dist):.1f} px from the target, bound {bound:.1f}"
                return self._ref, PerceptionHold("jump", detail)
        main = candidates[0]  # areas are sorted: the largest candidate
        big = found.areas[main]
        others = candidates[1:]
        if not s.edge_rivals:
            others = [i for i in others if not found.edge[i]]
        rivals = [found.areas[i] for i in others]
        rivals = [a for a in rivals if a >= s.min_blob_px and a >= s.blob_ratio * big]
        if rivals:
            sizes = ", ".join(str(int(a)) for a in [big, *rivals])
            return self._ref or (0.0, 0.0), PerceptionHold(
                "blobs", f"{1 + len(rivals)} blobs of {sizes} px"
            )
        x, y = found.centroids[main]
        return (float(x), float(y)), None
