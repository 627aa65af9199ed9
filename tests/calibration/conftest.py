"""Board images rendered once per session through a known camera (see calib_synth)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from calib_synth import (
    TRUE_CAMERA,
    charuco_texture,
    chessboard_texture,
    write_views,
)

from grasprt.calibration.boards import CharucoBoard, ChessBoard


@dataclass(frozen=True)
class RenderedSet:
    folder: Path
    poses: list[tuple[np.ndarray, np.ndarray]]


@pytest.fixture(scope="session")
def chessboard() -> ChessBoard:
    return ChessBoard(9, 6, 0.025)


@pytest.fixture(scope="session")
def charuco() -> CharucoBoard:
    return CharucoBoard(5, 7, 0.04, 0.03, "DICT_4X4_50")


@pytest.fixture(scope="session")
def chessboard_views(tmp_path_factory: pytest.TempPathFactory, chessboard: ChessBoard):
    folder = tmp_path_factory.mktemp("chessboard")
    tex = chessboard_texture(chessboard)
    poses = write_views(folder, TRUE_CAMERA, tex, 14, seed=11)
    return RenderedSet(folder, poses)


@pytest.fixture(scope="session")
def charuco_views(tmp_path_factory: pytest.TempPathFactory, charuco: CharucoBoard):
    folder = tmp_path_factory.mktemp("charuco")
    tex = charuco_texture(charuco)
    # Nearer and less tilted than the chessboard: ChArUco corners sit close to marker
    # edges, which small, steep views blur into the corners.
    poses = write_views(folder, TRUE_CAMERA, tex, 14, seed=12, depth=(0.3, 0.5), tilt_deg=32.0)
    return RenderedSet(folder, poses)
