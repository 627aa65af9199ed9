"""How well a set of board views covers what a calibration needs, as ROS's calibrator judges.

Each view is reduced to four numbers in [0, 1]: where the board sits across (x) and down
(y) the image, how much of the image it fills (size), and how tilted it is (skew). A
good set spans a wide range of each; a new view is worth taking only when it differs
from every view already taken. The targets below are the spans ROS's
``camera_calibration`` asks for before it lets the user calibrate.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from grasprt.calibration.boards import Board, Detection

TARGET_SPAN = {"x": 0.7, "y": 0.7, "size": 0.4, "skew": 0.5}
DIMENSIONS = tuple(TARGET_SPAN)


_HINTS = {
    "x": "move the board towards the left and right edges of the image",
    "y": "move the board towards the top and bottom edges of the image",
    "size": "bring the board nearer so it fills the image, and farther away",
    "skew": "tilt the board more, left, right, up and down",
}


@dataclass(frozen=True)
class ViewParams:
    x: float
    y: float
    size: float
    skew: float

    def as_array(self) -> np.ndarray:
        return np.array([self.x, self.y, self.size, self.skew])


def board_quad(board: Board, det: Detection) -> np.ndarray:
    """The board's corner-grid outline in the image (4 x 2), also when partly hidden."""
    h, _ = cv2.findHomography(det.object_points[:, :2], det.image_points, 0)
    if h is None:
        return np.repeat(det.image_points.mean(axis=0, keepdims=True), 4, axis=0)
    quad = cv2.perspectiveTransform(board.outline()[:, :2].reshape(-1, 1, 2).astype(np.float64), h)
    return quad.reshape(4, 2)


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Interior angle at b, radians."""
    u, v = a - b, c - b
    cos = np.dot(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12)
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def view_params(quad: np.ndarray, width: int, height: int) -> ViewParams:
    area = 0.5 * abs(
        float(
            np.dot(quad[:, 0], np.roll(quad[:, 1], 1)) - np.dot(quad[:, 1], np.roll(quad[:, 0], 1))
        )
    )
    size = float(np.sqrt(area / (width * height)))
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    span = hi - lo
    centre = quad.mean(axis=0)

    # Position is measured over the range the board's centre can actually take, so a
    # large board at the image's edge still counts as being at the edge.
    def place(c: float, s: float, full: int) -> float:
        room = full - s
        return 0.5 if room <= 1 else float(np.clip((c - s / 2) / room, 0.0, 1.0))

    x, y = place(centre[0], span[0], width), place(centre[1], span[1], height)
    # A board seen face-on is a rectangle; tilting it away makes its corners depart from
    # right angles. Twice the mean departure (radians) saturates at about 29 degrees.
    angles = [_angle(quad[i - 1], quad[i], quad[(i + 1) % 4]) for i in range(4)]
    skew = float(min(1.0, 2.0 * np.mean([abs(np.pi / 2 - a) for a in angles])))
    return ViewParams(x, y, float(min(size, 1.0)), skew)


class CoverageTracker:
    """The views taken so far and how far they span each dimension."""

    def __init__(self, min_views: int = 8, max_views: int = 40, novelty: float = 0.2) -> None:
        self.min_views = min_views
        self.max_views = max_views
        self.novelty = novelty
        self.params: list[ViewParams] = []

    def adds_something(self, p: ViewParams) -> bool:
        """True when ``p`` differs from every view taken (L1 distance over x, y, size, skew)."""
        if len(self.params) >= self.max_views:
            return False
        a = p.as_array()
        return all(np.abs(a - q.as_array()).sum() > self.novelty for q in self.params)

    def add(self, p: ViewParams) -> None:
        self.params.append(p)

    def progress(self) -> dict[str, float]:
        """Per dimension, the span covered over the span wanted, capped at 1."""
        if not self.params:
            return dict.fromkeys(DIMENSIONS, 0.0)
        arr = np.array([p.as_array() for p in self.params])
        spans = arr.max(axis=0) - arr.min(axis=0)
        # Tilt is wanted in itself, not a spread of tilts: a face-on view adds nothing to
        # the focal length, so the most tilted view counts, not the range.
        spans[3] = arr[:, 3].max()
        return {
            d: float(min(1.0, s / TARGET_SPAN[d])) for d, s in zip(DIMENSIONS, spans, strict=True)
        }

    def enough(self) -> bool:
        """True when the views span every target (and there are enough of them)."""
        if len(self.params) >= self.max_views:
            return True
        return len(self.params) >= self.min_views and all(
            v >= 1.0 for v in self.progress().values()
        )

    def hint(self) -> str:
        """What to do next: the advice for the dimension covered least so far."""
        progress = self.progress()
        worst = min(DIMENSIONS, key=lambda d: progress[d])
        return _HINTS[worst]

    def summary(self) -> str:
        """One terminal line: ``views 12  x [#######---] 70%  y ...``."""
        parts = [f"views {len(self.params):2d}"]
        for d, v in self.progress().items():
            filled = round(10 * v)
            parts.append(f"{d} [{'#' * filled}{'-' * (10 - filled)}] {100 * v:3.0f}%")
        return "  ".join(parts)
