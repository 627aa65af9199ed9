"""A calibration board printed on the simulated table, for hand-eye calibration.

The board is drawn by OpenCV (a ChArUco board's own image; a chessboard's squares) at
half a millimetre a pixel with a white margin, and lies flat on the table, so the
renderer warps it into the frame with the table's own homography.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from grasprt.calibration.boards import CharucoBoard, ChessBoard, parse_board
from grasprt.drivers.sim.config import BoardPlacement

RESOLUTION_M = 0.0005  # metres per board-image pixel


@dataclass(frozen=True)
class BoardPrint:
    image: np.ndarray  # H x W x 3 uint8: the print, margin included
    # 3x3 from board-image pixels to the table plane (base x, y, 1).
    plane_from_image: np.ndarray

    def level(self, footprint_m: float) -> tuple[np.ndarray, np.ndarray]:
        """The print halved until its pixels are about a camera pixel's footprint
        (a linear warp of a much finer image aliases), and its own plane_from_image."""
        img, h = self.image, self.plane_from_image
        res = RESOLUTION_M
        while res * 2 <= footprint_m * 1.2 and min(img.shape[:2]) > 64:
            img = cv2.pyrDown(img)
            # pyrDown's pixel i covers the old pixels 2i - 0.5 .. 2i + 1.5: centre 2i + 0.5.
            h = h @ np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1.0]])
            res *= 2
        return img, h


def _chessboard_image(board: ChessBoard, px: int) -> np.ndarray:
    squares_x, squares_y = board.cols + 1, board.rows + 1
    img = np.full((squares_y * px, squares_x * px), 255, np.uint8)
    for j in range(squares_y):
        for i in range(squares_x):
            if (i + j) % 2 == 0:
                img[j * px : (j + 1) * px, i * px : (i + 1) * px] = 0
    return img


def board_print(place: BoardPlacement) -> BoardPrint:
    """The board's print and where it lies. The board's own frame (its corners' object
    points) has its origin at the print's top-left square corner, x along the image's
    columns, y along its rows, z into the table."""
    board = parse_board(place.spec, place.square, marker=place.marker or None)
    px = round(place.square / RESOLUTION_M)
    if isinstance(board, CharucoBoard):
        size = (board.squares_x * px, board.squares_y * px)
        grey = board.board.generateImage(size, marginSize=0, borderBits=1)
    else:
        assert isinstance(board, ChessBoard)
        grey = _chessboard_image(board, px)
    margin = px // 2
    grey = cv2.copyMakeBorder(grey, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)
    # Printed paper is not a perfect black and white.
    grey = (30 + grey.astype(np.float32) * (200 / 255)).astype(np.uint8)
    h, w = grey.shape
    c, s = np.cos(place.yaw), np.sin(place.yaw)
    mid = np.array([[1.0, 0, -(w - 1) / 2], [0, 1.0, -(h - 1) / 2], [0, 0, 1.0]])
    # Image rows run along -y of the table so the print is not mirrored seen from above.
    flip = np.diag([RESOLUTION_M, -RESOLUTION_M, 1.0])
    turn = np.array([[c, -s, place.xy[0]], [s, c, place.xy[1]], [0, 0, 1.0]])
    return BoardPrint(cv2.merge([grey, grey, grey]), turn @ flip @ mid)
