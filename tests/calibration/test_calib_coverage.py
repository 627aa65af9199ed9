"""Coverage bookkeeping: what a view adds and when there are enough."""

from __future__ import annotations

import numpy as np
import pytest
from calib_synth import TRUE_CAMERA, project

from grasprt.calibration.boards import ChessBoard
from grasprt.calibration.coverage import (
    TARGET_SPAN,
    CoverageTracker,
    ViewParams,
    board_quad,
    view_params,
)
from grasprt.calibration.image_folder import read_grey

W, H = 640, 480


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def test_a_face_on_board_in_the_middle():
    p = view_params(rect(220, 140, 420, 340), W, H)
    assert p.x == pytest.approx(0.5) and p.y == pytest.approx(0.5)
    assert p.size == pytest.approx(np.sqrt(200 * 200 / (W * H)))
    assert p.skew == pytest.approx(0.0, abs=1e-9)


def test_a_board_at_the_corner_counts_as_at_the_edge_whatever_its_size():
    small = view_params(rect(0, 0, 100, 80), W, H)
    large = view_params(rect(0, 0, 400, 300), W, H)
    assert (small.x, small.y) == (0.0, 0.0)
    assert (large.x, large.y) == (0.0, 0.0)
    far = view_params(rect(540, 400, 640, 480), W, H)
    assert (far.x, far.y) == (1.0, 1.0)


def test_a_tilted_board_has_skew():
    # A trapezoid: the board's top edge leans away from the camera.
    tilted = np.array([[260, 150], [380, 150], [440, 330], [200, 330]], float)
    assert view_params(tilted, W, H).skew > 0.5


def test_the_quad_of_a_real_detection_is_the_board_outline(
    chessboard: ChessBoard, chessboard_views
):
    rvec, tvec = chessboard_views.poses[0]
    det = chessboard.detect(read_grey(chessboard_views.folder / "view_00.png"))
    assert det is not None
    quad = board_quad(chessboard, det)
    truth = project(TRUE_CAMERA, chessboard.outline(), rvec, tvec)
    # A homography through a distorted lens: right to a few pixels, enough for coverage.
    assert np.abs(quad - truth).max() < 6.0


def test_tracker_takes_only_views_that_add_something():
    t = CoverageTracker(min_views=3, max_views=10)
    first = ViewParams(0.5, 0.5, 0.3, 0.1)
    assert t.adds_something(first)
    t.add(first)
    assert not t.adds_something(ViewParams(0.52, 0.48, 0.31, 0.12))
    assert t.adds_something(ViewParams(0.1, 0.5, 0.3, 0.1))
    assert t.progress()["x"] == 0.0
    assert "left and right edges" in t.hint()
    t.add(ViewParams(1.0, 0.0, 0.3, 0.1))
    assert "nearer" in t.hint()  # size is now the least covered


def test_tracker_is_done_when_every_span_is_covered():
    t = CoverageTracker(min_views=4, max_views=40)
    views = [
        ViewParams(0.0, 0.0, 0.2, 0.0),
        ViewParams(1.0, 0.0, 0.3, 0.1),
        ViewParams(0.0, 1.0, 0.4, 0.2),
        ViewParams(1.0, 1.0, 0.65, 0.6),
    ]
    for i, v in enumerate(views):
        assert not t.enough()
        assert t.adds_something(v)
        t.add(v)
        if i == 2:
            assert t.progress()["skew"] == pytest.approx(0.2 / TARGET_SPAN["skew"])
    assert t.progress() == {"x": 1.0, "y": 1.0, "size": 1.0, "skew": 1.0}
    assert t.enough()
    assert t.summary().startswith("views  4  x [##########] 100%")


def test_tracker_stops_at_max_views():
    t = CoverageTracker(min_views=2, max_views=3)
    for i in range(3):
        t.add(ViewParams(0.3 * i, 0.5, 0.3, 0.0))
    assert t.enough()
    assert not t.adds_something(ViewParams(0.0, 0.0, 0.9, 0.9))
