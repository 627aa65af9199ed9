"""The model view: camera frames re-projected into the bundle's pinhole camera."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from calib_synth import TRUE_CAMERA

from grasprt.calibration.model_view import (
    NEUTRAL_FILL,
    REFERENCE_MODEL_CAMERA,
    ModelView,
    field_of_view_deg,
    fold_radius,
)
from grasprt.calibration.resolution import fit_to_resolution
from grasprt.errors import ConfigError
from grasprt.types import Intrinsics

# A model camera at about half the wrist camera's resolution, slightly narrower than it,
# with its principal point off-centre so that a convention slip would show.
MODEL = Intrinsics(400, 400, 262.0, 262.0, 201.3, 197.8)


def _project(intr: Intrinsics, points: np.ndarray) -> np.ndarray:
    px, _ = cv2.projectPoints(
        points, np.zeros(3), np.zeros(3), intr.matrix(), np.array(intr.dist, np.float64)
    )
    return px.reshape(-1, 2)


def _blobs(size: tuple[int, int], centres: np.ndarray, sigma: float) -> np.ndarray:
    """White Gaussian dots on black at subpixel ``centres`` (pixel centres at integers)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w))
    for u, v in centres:
        img += np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * sigma**2))
    grey = np.clip(255 * img, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _centroid(img: np.ndarray, near: np.ndarray, radius: int = 4) -> np.ndarray:
    u0, v0 = np.round(near).astype(int)
    patch = img[v0 - radius : v0 + radius + 1, u0 - radius : u0 + radius + 1, 0].astype(float)
    yy, xx = np.mgrid[v0 - radius : v0 + radius + 1, u0 - radius : u0 + radius + 1]
    return np.array([(patch * xx).sum(), (patch * yy).sum()]) / patch.sum()


def test_a_point_lands_where_the_model_camera_sees_it_within_half_a_pixel():
    # A grid of directions both cameras see, away from the model view's edges.
    gx, gy = np.meshgrid(np.linspace(-0.6, 0.6, 9), np.linspace(-0.42, 0.42, 7))
    points = np.column_stack([gx.ravel(), gy.ravel(), np.ones(gx.size)])
    in_camera = _project(TRUE_CAMERA, points)
    in_model = _project(MODEL, points)
    assert (in_model > 8).all() and (in_model < 392).all()
    assert (in_camera > 8).all() and (in_camera < [632, 472]).all()

    frame = _blobs((TRUE_CAMERA.width, TRUE_CAMERA.height), in_camera, sigma=2.0)
    view = ModelView(TRUE_CAMERA, MODEL)
    out = view.apply(frame)
    assert out.shape == (400, 400, 3)
    found = np.array([_centroid(out, p) for p in in_model])
    errors = np.linalg.norm(found - in_model, axis=1)
    assert errors.max() < 0.5
    # Far tighter in fact: a half-pixel slip in the pixel-centre convention would show.
    assert np.median(errors) < 0.1
    # The dots did move: the lens's distortion and the change of camera are both undone.
    assert np.abs(in_camera - (in_model - [MODEL.cx, MODEL.cy]) * 2 - [327, 236]).max() > 5


def test_coverage_and_fov_gap_match_the_geometry_of_two_pinholes():
    camera = Intrinsics(640, 480, 400.0, 400.0, 319.5, 239.5)  # 77 x 62 degrees
    view = ModelView(camera, REFERENCE_MODEL_CAMERA)
    m = REFERENCE_MODEL_CAMERA
    # Pinhole to pinhole is an affine map: the camera's image is a rectangle in the model.
    scale = m.fx / camera.fx
    u = np.arange(m.width)
    v = np.arange(m.height)
    u_cam = (u - m.cx) / scale + camera.cx
    v_cam = (v - m.cy) / scale + camera.cy
    seen_u = ((u_cam >= 0) & (u_cam <= camera.width - 1)).mean()
    seen_v = ((v_cam >= 0) & (v_cam <= camera.height - 1)).mean()
    assert view.coverage == pytest.approx(seen_u * seen_v, abs=1e-9)
    assert 0.5 < view.coverage < 1.0

    def fov(intr: Intrinsics, n: int, c: float, f: float) -> float:
        return float(np.degrees(np.arctan((n - 0.5 - c) / f) - np.arctan((-0.5 - c) / f)))

    gap_h = fov(m, 400, m.cx, m.fx) - fov(camera, 640, camera.cx, camera.fx)
    gap_v = fov(m, 400, m.cy, m.fy) - fov(camera, 480, camera.cy, camera.fy)
    assert view.fov_gap_deg == pytest.approx((gap_h, gap_v), abs=1e-6)
    assert field_of_view_deg(m)[0] == pytest.approx(80.0, abs=1e-3)

    out = view.apply(np.full((480, 640, 3), 255, np.uint8))
    white = (out == 255).all(axis=2).mean()
    grey = (out == NEUTRAL_FILL).all(axis=2).mean()
    assert white == pytest.approx(view.coverage, abs=0.01)
    assert white + grey > 0.99
    line = view.describe()
    assert "640x480" in line and "400x400" in line and f"{view.coverage:.0%}" in line
    assert "grey" in line


def test_a_camera_that_sees_too_little_of_the_model_view_is_refused():
    telephoto = Intrinsics(640, 480, 1600.0, 1600.0, 319.5, 239.5)
    with pytest.raises(ConfigError, match=r"sees only \d+% of the bundle's 400x400 view"):
        ModelView(telephoto, REFERENCE_MODEL_CAMERA)
    allowed = ModelView(telephoto, REFERENCE_MODEL_CAMERA, min_coverage=0.0)
    assert allowed.coverage < 0.5
    assert allowed.fov_gap_deg[0] > 40


def test_rays_beyond_the_lens_model_fold_are_filled_not_mirrored_back():
    # Strong barrel distortion: the radial polynomial peaks at r = 1.05 and returns to 0
    # at r = 1.83, so rays near r = 1.83 would land back in the image's middle.
    barrel = replace(TRUE_CAMERA, dist=(-0.3, 0.0, 0.0, 0.0, 0.0))
    wide = Intrinsics(400, 400, 90.0, 90.0, 199.5, 199.5)  # about 130 degrees across
    assert fold_radius(barrel.dist) == pytest.approx(np.sqrt(1 / 0.9), abs=1e-3)
    ring = (200, round(199.5 + 1.83 * 90))  # row, column of a model pixel at r = 1.83
    mx, my = cv2.initUndistortRectifyMap(
        barrel.matrix(), np.array(barrel.dist), None, wide.matrix(), (400, 400), cv2.CV_32FC1
    )
    # OpenCV's own map samples the camera image there: a ghost of the image's middle.
    assert 0 <= mx[ring] <= 639 and 0 <= my[ring] <= 479

    view = ModelView(barrel, wide, min_coverage=0.0)
    out = view.apply(np.full((480, 640, 3), 255, np.uint8))
    assert (out[ring] == NEUTRAL_FILL).all()
    assert (out[200, 200] == 255).all()
    # What is seen is one region around the centre, with no second ring.
    seen = (out[..., 0] > NEUTRAL_FILL).astype(np.uint8)
    n_labels, _ = cv2.connectedComponents(seen)
    assert n_labels == 2


def test_no_distortion_means_no_fold():
    assert fold_radius(()) == np.inf
    assert fold_radius((0.1, 0.01, 0.0, 0.0, 0.0)) == np.inf


def test_the_same_camera_is_passed_through_untouched():
    view = ModelView(REFERENCE_MODEL_CAMERA, REFERENCE_MODEL_CAMERA)
    frame = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    assert view.identity and view.coverage == 1.0
    assert view.apply(frame) is frame
    assert "no remap" in view.describe()


def test_a_frame_of_another_size_is_refused():
    view = ModelView(TRUE_CAMERA, MODEL)
    with pytest.raises(ConfigError, match="frame is 320x240 but its intrinsics are for 640x480"):
        view.apply(np.zeros((240, 320, 3), np.uint8))


def test_intrinsics_scale_to_another_resolution_of_the_same_aspect():
    full = Intrinsics(1280, 960, 1040.0, 1046.0, 655.1, 471.3, TRUE_CAMERA.dist)
    half = fit_to_resolution(full, 640, 480)
    points = np.array([[0.1, -0.2, 1.0], [-0.3, 0.25, 1.0], [0.0, 0.0, 1.0]])
    big, small = _project(full, points), _project(half, points)
    # The same ray, in the half-size image's pixel grid (corners at -0.5 in both).
    assert np.allclose(small, (big + 0.5) / 2 - 0.5, atol=1e-9)
    assert fit_to_resolution(full, 1280, 960) is full
    with pytest.raises(ConfigError, match="another aspect ratio"):
        fit_to_resolution(full, 1280, 720)
