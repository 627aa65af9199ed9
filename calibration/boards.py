"""Calibration boards: parse ``--board`` specs and find a board's corners in an image.

Two kinds, as ROS's ``camera_calibration`` knows them: a plain chessboard (named by its
inner-corner count) and a ChArUco board (named by its square count), whose markers let
it be found when only part of it is in view, which matters at the image's edges where
the distortion is strongest and a chessboard must be seen whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from grasprt.errors import ConfigError

# The largest image side searched at full size; bigger frames are searched downscaled
# and the corners refined at full size, which keeps live mode responsive at 1080p.
_SEARCH_SIDE = 1280


@dataclass(frozen=True)
class Detection:
    """A board seen in one image: matching image and board-plane points."""

    image_points: np.ndarray  # N x 2 float32, pixels (pixel centres at integers)
    object_points: np.ndarray  # N x 3 float32, metres on the board plane (z = 0)


class Board(Protocol):
    spec: str
    square: float

    def detect(self, gray: np.ndarray, *, fast: bool = False) -> Detection | None:
        """The board's corners in a grey image, refined to subpixel, or None."""
        ...

    def outline(self) -> np.ndarray:
        """The four outer corners of the corner grid (4 x 3, metres), in order around it."""
        ...


def _refine_window(points: np.ndarray, cols: int) -> int:
    """Half-size of the subpixel search window: well inside one square.

    A window wider than a square lets ``cornerSubPix`` slide onto a neighbouring corner,
    so it follows the smallest spacing between adjacent corners in this view.
    """
    grid = points.reshape(-1, cols, 2)
    spacing = [np.linalg.norm(np.diff(grid, axis=1), axis=2).min()] if cols > 1 else []
    if grid.shape[0] > 1:
        spacing.append(np.linalg.norm(np.diff(grid, axis=0), axis=2).min())
    return int(np.clip(0.35 * min(spacing), 2, 11))


def _downscale(gray: np.ndarray) -> tuple[np.ndarray, float]:
    side = max(gray.shape[:2])
    if side <= _SEARCH_SIDE:
        return gray, 1.0
    scale = _SEARCH_SIDE / side
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return small, scale


class ChessBoard:
    """A chessboard with ``cols`` x ``rows`` inner corners and squares of ``square`` metres."""

    def __init__(self, cols: int, rows: int, square: float) -> None:
        if cols < 3 or rows < 3:
            raise ConfigError(f"chessboard:{cols}x{rows}: needs at least 3x3 inner corners")
        self.cols, self.rows, self.square = cols, rows, square
        self.spec = f"chessboard:{cols}x{rows}"
        grid = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2)
        self._object = np.zeros((cols * rows, 3), np.float32)
        self._object[:, :2] = grid * square

    def outline(self) -> np.ndarray:
        c, r = self.cols - 1, self.rows - 1
        return np.array([[0, 0, 0], [c, 0, 0], [c, r, 0], [0, r, 0]], np.float32) * self.square

    def detect(self, gray: np.ndarray, *, fast: bool = False) -> Detection | None:
        small, scale = _downscale(gray)
        flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
        if fast:
            flags |= cv2.CALIB_CB_FAST_CHECK
        found, corners = cv2.findChessboardCorners(small, (self.cols, self.rows), flags=flags)
        if not found:
            return None
        corners = (corners.reshape(-1, 2) + 0.5) / scale - 0.5
        win = _refine_window(corners, self.cols)
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.001)
        refined = cv2.cornerSubPix(
            gray, corners.astype(np.float32).reshape(-1, 1, 2), (win, win), (-1, -1), criteria
        )
        return Detection(refined.reshape(-1, 2), self._object.copy())


# Names users type for OpenCV's predefined dictionaries: "DICT_4X4_50", "4x4_50", ...
_DICTIONARIES = {
    name.removeprefix("DICT_").upper(): getattr(cv2.aruco, name)
    for name in dir(cv2.aruco)
    if name.startswith("DICT_") and name.upper() == name
}


def dictionary_id(name: str) -> int:
    key = name.upper().removeprefix("DICT_")
    if key not in _DICTIONARIES:
        known = ", ".join(sorted(_DICTIONARIES))
        raise ConfigError(f"--dictionary {name}: unknown ArUco dictionary (one of {known})")
    return _DICTIONARIES[key]


class CharucoBoard:
    """A ChArUco board of ``squares_x`` x ``squares_y`` squares (OpenCV's layout)."""

    # Fewer corners than this constrain a view's pose too weakly to help the solve.
    min_corners = 6

    def __init__(
        self,
        squares_x: int,
        squares_y: int,
        square: float,
        marker: float,
        dictionary: str = "DICT_4X4_50",
        legacy: bool = False,
    ) -> None:
        if squares_x < 2 or squares_y < 2:
            raise ConfigError(f"charuco:{squares_x}x{squares_y}: needs at least 2x2 squares")
        if not 0 < marker < square:
            raise ConfigError(
                f"--marker {marker}: the marker side must be positive and smaller than "
                f"--square {square}"
            )
        d = cv2.aruco.getPredefinedDictionary(dictionary_id(dictionary))
        needed = (squares_x * squares_y) // 2
        if d.bytesList.shape[0] < needed:
            raise ConfigError(
                f"--dictionary {dictionary}: has {d.bytesList.shape[0]} markers, "
                f"charuco:{squares_x}x{squares_y} needs {needed}"
            )
        self.squares_x, self.squares_y = squares_x, squares_y
        self.square, self.marker = square, marker
        self.spec = f"charuco:{squares_x}x{squares_y}"
        self.board = cv2.aruco.CharucoBoard((squares_x, squares_y), square, marker, d)
        self.board.setLegacyPattern(legacy)
        self._corners = self.board.getChessboardCorners().astype(np.float32)
        self._detector = cv2.aruco.CharucoDetector(self.board)

    def outline(self) -> np.ndarray:
        s = self.square
        c, r = (self.squares_x - 1) * s, (self.squares_y - 1) * s
        return np.array([[s, s, 0], [c, s, 0], [c, r, 0], [s, r, 0]], np.float32)

    def detect(self, gray: np.ndarray, *, fast: bool = False) -> Detection | None:
        corners, ids, _, _ = self._detector.detectBoard(gray)
        if ids is None or len(ids) < self.min_corners:
            return None
        ids = ids.reshape(-1)
        if self.board.checkCharucoCornersCollinear(ids):
            return None
        return Detection(corners.reshape(-1, 2).astype(np.float32), self._corners[ids].copy())


_SPEC = re.compile(r"^(chessboard|charuco):(\d+)x(\d+)$")


def parse_board(
    spec: str,
    square: float,
    *,
    marker: float | None = None,
    dictionary: str = "DICT_4X4_50",
    legacy: bool = False,
) -> Board:
    """``chessboard:COLSxROWS`` (inner corners) or ``charuco:COLSxROWS`` (squares)."""
    m = _SPEC.match(spec.strip().lower())
    if not m:
        raise ConfigError(
            f"--board {spec}: expected chessboard:COLSxROWS (inner corners, e.g. chessboard:9x6)"
            " or charuco:COLSxROWS (squares, e.g. charuco:5x7)"
        )
    if not square > 0:
        raise ConfigError(f"--square {square}: the square side must be positive (metres)")
    kind, a, b = m.group(1), int(m.group(2)), int(m.group(3))
    if kind == "chessboard":
        return ChessBoard(a, b, square)
    if marker is None:
        raise ConfigError(f"--board {spec}: a ChArUco board needs --marker (marker side, metres)")
    return CharucoBoard(a, b, square, marker, dictionary, legacy)
