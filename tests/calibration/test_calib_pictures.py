"""The pictures: the coverage plot (both engines) and the side-by-side view."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from bundle_factory import color_segmenter

from grasprt.calibration.boards import ChessBoard
from grasprt.calibration.image_folder import detect_folder
from grasprt.calibration.plot import plot_data, write_coverage_plot
from grasprt.calibration.solve import CalibrationResult, calibrate
from grasprt.calibration.view import (
    GAP,
    LABEL_H,
    MASK_COLOUR,
    Segmenter,
    compose_view,
    mask_panel,
)
from grasprt.errors import BundleError


@pytest.fixture(scope="module")
def solved(chessboard: ChessBoard, chessboard_views) -> tuple[CalibrationResult, list]:
    found = detect_folder(chessboard_views.folder, chessboard)
    result = calibrate(found.views, found.width, found.height)
    # Pretend the solve dropped the first view, to see it drawn apart.
    first = found.views[0].name
    result.dropped[first] = result.per_view_errors.pop(first)
    return result, found.views


@pytest.mark.parametrize("engine", ["matplotlib", "opencv"])
def test_coverage_plot_is_drawn_by_either_engine(
    tmp_path: Path, chessboard: ChessBoard, solved, engine: str
):
    result, views = solved
    data = plot_data(result, views, chessboard, 640, 480)
    assert data.dropped == [True] + [False] * (len(views) - 1)
    assert set(data.progress) == {"x", "y", "size", "skew"}
    path = tmp_path / f"{engine}.png"
    used = write_coverage_plot(path, data, use_matplotlib=engine == "matplotlib")
    assert used == engine
    img = cv2.imread(str(path))
    assert img is not None and img.shape[1] > img.shape[0] > 300
    b, g, r = (img[..., i].astype(int) for i in range(3))
    assert ((b - r > 80) & (b - g > 30)).any()  # the used views, in blue
    assert ((r - b > 80) & (r - g > 80)).any()  # the dropped view, in red


def test_compose_view_puts_panels_side_by_side_under_labels():
    camera = np.zeros((480, 640, 3), np.uint8)
    camera[:, :320] = (200, 10, 10)
    model = np.full((400, 400, 3), 114, np.uint8)
    prob = np.zeros((100, 100), np.float32)
    prob[40:50, 60:70] = 0.9
    prob[10, 10] = 0.3
    mask = mask_panel(prob, 0.5, (400, 400))
    assert (mask[160:200, 240:280] == MASK_COLOUR).all()
    assert (mask[40:44, 40:44] == round(0.3 * 255)).all()  # below threshold: grey
    canvas = compose_view(camera, model, ["camera", "model", "mask"], mask)
    cam_w = round(640 * 400 / 480)
    assert canvas.shape == (400 + LABEL_H, cam_w + 400 + 400 + 2 * GAP, 3)
    panel = canvas[LABEL_H:]
    assert (panel[:, : cam_w // 2 - 2] == (200, 10, 10)).all()
    assert (panel[:, cam_w + GAP : cam_w + GAP + 400] == 114).all()
    assert (panel[:, -400:] == mask).all()
    assert (canvas[:LABEL_H] < 128).any()  # label text drawn
    with pytest.raises(ValueError, match="3 panels need 3 labels"):
        compose_view(camera, model, ["camera"], mask)


def test_long_labels_are_cut_to_their_panel():
    small = np.zeros((100, 60, 3), np.uint8)
    canvas = compose_view(small, small, ["a very long label indeed", "b"])
    # Nothing of the first label spills into the gap between the panels.
    assert (canvas[:LABEL_H, 60 : 60 + GAP] == 255).all()


def test_segmenter_runs_a_bundle_model_in_onnx_runtime():
    seg = Segmenter(color_segmenter().SerializeToString())
    image = np.full((400, 400, 3), 90, np.uint8)
    image[100:140, 200:240] = (235, 205, 20)  # yellow
    prob = seg(image)
    assert prob.shape == (100, 100) and prob.dtype == np.float32
    assert prob[25:35, 50:60].min() > 0.9
    assert prob[:20].max() == 0.0
    with pytest.raises(BundleError, match="ONNX Runtime cannot load it"):
        Segmenter(b"not an onnx model")
