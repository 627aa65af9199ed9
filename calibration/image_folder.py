"""Board views from a folder of images, with the errors a user can act on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from grasprt.calibration.boards import Board, ChessBoard
from grasprt.calibration.solve import View
from grasprt.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")


@dataclass
class FolderViews:
    views: list[View]
    width: int
    height: int
    images: int
    missed: list[str] = field(default_factory=list)  # images where no board was found


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"--images {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"--images {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_grey(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise ConfigError(f"{path}: not a readable image")
    return img


def _board_hint(board: Board, grey: np.ndarray) -> str:
    """A likely fix when a chessboard is found nowhere: squares counted, not corners."""
    if not isinstance(board, ChessBoard):
        return "check --board (charuco counts squares), --dictionary and --legacy-pattern"
    for cols, rows in ((board.cols - 1, board.rows - 1), (board.cols + 1, board.rows + 1)):
        if cols >= 3 and rows >= 3:
            found, _ = cv2.findChessboardCorners(
                grey, (cols, rows), flags=cv2.CALIB_CB_ADAPTIVE_THRESH
            )
            if found:
                return f"the images show chessboard:{cols}x{rows} (inner corners, not squares)"
    return "chessboard counts inner corners: a board of 10x7 squares is chessboard:9x6"


def detect_folder(
    folder: Path, board: Board, progress: Callable[[str], None] | None = None
) -> FolderViews:
    """Detect ``board`` in every image of ``folder`` (all must share one size)."""
    files = list_images(folder)
    size: tuple[int, int] | None = None
    views: list[View] = []
    missed: list[str] = []
    first_grey: np.ndarray | None = None
    for i, path in enumerate(files, 1):
        grey = read_grey(path)
        h, w = grey.shape[:2]
        if size is None:
            size, first_grey = (w, h), grey
        elif (w, h) != size:
            raise ConfigError(
                f"{path}: image is {w}x{h}, the images before it are {size[0]}x{size[1]} "
                "(one camera, one resolution per calibration)"
            )
        det = board.detect(grey)
        if det is None:
            missed.append(path.name)
        else:
            views.append(View(path.name, det))
        if progress is not None:
            found = f"{len(det.image_points)} corners" if det is not None else "no board"
            progress(f"[{i}/{len(files)}] {path.name}: {found}")
    assert size is not None and first_grey is not None
    if not views:
        raise ConfigError(
            f"--board {board.spec} found in none of the {len(files)} images in {folder}: "
            + _board_hint(board, first_grey)
        )
    return FolderViews(views, size[0], size[1], len(files), missed)
