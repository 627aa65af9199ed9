"""Calibrations recover the camera that rendered the boards (the issue's acceptance figures)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from calib_synth import (
    TRUE_CAMERA,
    bent,
    charuco_texture,
    chessboard_texture,
    project,
    render,
    texture_outline,
)

from grasprt.calibration.boards import CharucoBoard, ChessBoard
from grasprt.calibration.image_folder import detect_folder, read_grey
from grasprt.calibration.solve import SolveOptions, calibrate
from grasprt.types import Intrinsics


def assert_recovers(found: Intrinsics, rms: float) -> None:
    true = TRUE_CAMERA
    assert abs(found.fx / true.fx - 1) < 0.005
    assert abs(found.fy / true.fy - 1) < 0.005
    assert abs(found.cx - true.cx) < 2.0
    assert abs(found.cy - true.cy) < 2.0
    assert rms < 0.3
    assert (found.width, found.height) == (true.width, true.height)


def test_chessboard_corners_land_on_the_projected_truth(chessboard: ChessBoard, chessboard_views):
    errors = []
    for i, (rvec, tvec) in enumerate(chessboard_views.poses):
        grey = read_grey(chessboard_views.folder / f"view_{i:02d}.png")
        det = chessboard.detect(grey)
        assert det is not None
        truth = project(TRUE_CAMERA, det.object_points, rvec, tvec)
        errors.append(np.linalg.norm(det.image_points - truth, axis=1))
    errors = np.concatenate(errors)
    assert np.median(errors) < 0.1
    assert errors.max() < 0.4


def test_chessboard_calibration_recovers_the_camera(chessboard: ChessBoard, chessboard_views):
    found = detect_folder(chessboard_views.folder, chessboard)
    assert len(found.views) == len(chessboard_views.poses)
    result = calibrate(found.views, found.width, found.height)
    assert_recovers(result.intrinsics, result.rms)
    assert result.dropped == {}
    # k1 dominates this lens; a solve that got it wrong would not reach the RMS above.
    assert result.intrinsics.dist[0] == pytest.approx(TRUE_CAMERA.dist[0], abs=0.01)
    assert all(result.std[k] > 0 for k in ("fx", "fy", "cx", "cy", "k1"))
    assert result.std["fx"] < 0.005 * TRUE_CAMERA.fx


def test_charuco_calibration_recovers_the_camera(charuco: CharucoBoard, charuco_views):
    found = detect_folder(charuco_views.folder, charuco)
    assert len(found.views) >= 12
    result = calibrate(found.views, found.width, found.height)
    assert_recovers(result.intrinsics, result.rms)


def test_charuco_board_is_found_when_partly_out_of_view(charuco: CharucoBoard):
    tex = charuco_texture(charuco)
    rvec = np.radians([10.0, -15.0, 5.0])
    # Board centre pushed past the left edge: only its right part is in the image.
    tvec = np.array([-0.34, -0.14, 0.4])
    img = render(TRUE_CAMERA, tex, rvec, tvec, rng=np.random.default_rng(3))
    det = charuco.detect(img)
    assert det is not None
    n_all = len(charuco.board.getChessboardCorners())
    assert charuco.min_corners <= len(det.image_points) < n_all
    truth = project(TRUE_CAMERA, det.object_points, rvec, tvec)
    assert np.linalg.norm(det.image_points - truth, axis=1).max() < 0.5
    sheet = project(TRUE_CAMERA, texture_outline(tex), rvec, tvec)
    assert sheet[:, 0].min() < 0  # the test really is a partial view


def test_outlier_view_is_dropped_and_the_result_stays_right(
    tmp_path: Path, chessboard: ChessBoard, chessboard_views
):
    folder = tmp_path / "views"
    shutil.copytree(chessboard_views.folder, folder)
    # One view of a buckled print: its corners are off the flat grid by millimetres.
    buckled = bent(chessboard_texture(chessboard), 0.003)
    rvec, tvec = chessboard_views.poses[0]
    img = render(TRUE_CAMERA, buckled, rvec, tvec, rng=np.random.default_rng(5))
    cv2.imwrite(str(folder / "zz_buckled.png"), img)

    found = detect_folder(folder, chessboard)
    assert "zz_buckled.png" in {v.name for v in found.views}
    result = calibrate(found.views, found.width, found.height)
    assert set(result.dropped) == {"zz_buckled.png"}
    assert result.dropped["zz_buckled.png"] > 0.5
    assert "zz_buckled.png" not in result.per_view_errors
    assert result.views_used == len(chessboard_views.poses)
    assert_recovers(result.intrinsics, result.rms)


def test_rational_model_gives_eight_coefficients(chessboard: ChessBoard, chessboard_views):
    found = detect_folder(chessboard_views.folder, chessboard)
    result = calibrate(found.views, found.width, found.height, SolveOptions(rational=True))
    assert len(result.intrinsics.dist) == 8
    assert set(result.std) >= {"k4", "k5", "k6"}
    assert result.rms < 0.3
