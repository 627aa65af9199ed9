"""The truth mask is drawn in the camera make_sim is given (the bundle's), not the sim's.

`--gt-mask` feeds the controller the frame's truth mask in place of the segmenter's, so
it must be the sphere as the bundle's camera would see it: here a 60 degree camera
against the sim's own 80 degree wrist camera.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from grasprt.calibration.camera_info import save_camera_info
from grasprt.clock import SimClock
from grasprt.drivers.sim import SimConfig, make_sim
from grasprt.drivers.sim.config import SceneConfig
from grasprt.drivers.sim.factory import default_intrinsics
from grasprt.types import Frame, Intrinsics

CELL = 4  # model pixels per mask pixel
# A large sphere covers ~100-200 mask pixels, so the mask's edge pixels weigh little.
CONFIG = SimConfig(scene=SceneConfig(sphere_diameter=0.06))
SEED = 2  # a start pose with the sphere well off the optical axis, wholly in view


def pinhole(hfov_deg: float) -> Intrinsics:
    f = 200.0 / math.tan(math.radians(hfov_deg / 2))
    return Intrinsics(400, 400, f, f, 199.5, 199.5)


def first_frame(
    model_camera: Intrinsics | None, config: SimConfig = CONFIG
) -> tuple[Frame, np.ndarray, float]:
    """The first frame, and the sphere's centre in the optical frame and its radius."""
    world, robot, camera = make_sim(config, SimClock(), SEED, model_camera=model_camera)
    robot.connect()
    camera.connect()
    frame = camera.latest()
    assert frame is not None and frame.truth_mask is not None
    snap = world.snapshot()
    pose = snap.camera_pose
    centre = pose[:3, :3].T @ (snap.target.centre - pose[:3, 3])
    return frame, centre, snap.target.radius


def expected_centre(intr: Intrinsics, centre: np.ndarray) -> np.ndarray:
    """Mask (col, row) under the projected centre; mask pixel j spans model pixels
    4j..4j+3, so its centre is model pixel 4j + 1.5."""
    u, v, w = intr.matrix() @ centre
    return (np.array([u / w, v / w]) - (CELL - 1) / 2) / CELL


def expected_area(intr: Intrinsics, centre: np.ndarray, radius: float) -> float:
    """Mask pixels inside the sphere's image: an ellipse, the cone of half-angle a
    (sin a = r / d) around the ray at angle t off the optical axis cut by the image
    plane, with semi-axes sin a cos a / (cos^2 t - sin^2 a) and
    sin a / sqrt(cos^2 t - sin^2 a) in normalised coordinates."""
    d = float(np.linalg.norm(centre))
    sin_a, cos_t = radius / d, centre[2] / d
    den = cos_t**2 - sin_a**2
    major = sin_a * math.sqrt(1 - sin_a**2) / den
    minor = sin_a / math.sqrt(den)
    return math.pi * major * minor * intr.fx * intr.fy / CELL**2


def centroid(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])


def test_the_truth_mask_is_the_sphere_seen_by_the_bundle_camera() -> None:
    bundle_camera = pinhole(60.0)
    frame, centre, radius = first_frame(bundle_camera)
    mask = frame.truth_mask
    assert mask is not None and mask.shape == (100, 100)
    np.testing.assert_allclose(centroid(mask), expected_centre(bundle_camera, centre), atol=0.5)
    assert mask.sum() == pytest.approx(expected_area(bundle_camera, centre, radius), rel=0.05)


def test_another_focal_length_moves_and_grows_the_mask_but_not_the_image() -> None:
    bundle_camera, sim_camera = pinhole(60.0), default_intrinsics()
    assert sim_camera.hfov_deg() == pytest.approx(80.0, abs=1e-3)
    narrow, centre, radius = first_frame(bundle_camera)
    default, _, _ = first_frame(None)
    assert narrow.truth_mask is not None and default.truth_mask is not None
    # The picture is the sim's wrist camera either way; only the mask's projection moves.
    np.testing.assert_array_equal(narrow.image, default.image)
    np.testing.assert_allclose(
        centroid(default.truth_mask), expected_centre(sim_camera, centre), atol=0.5
    )
    area = expected_area(sim_camera, centre, radius)
    assert default.truth_mask.sum() == pytest.approx(area, rel=0.05)
    shift = centroid(narrow.truth_mask) - centroid(default.truth_mask)
    assert np.linalg.norm(shift) > 5.0  # mask pixels: far beyond the half-pixel fit above
    ratio = narrow.truth_mask.sum() / default.truth_mask.sum()
    assert ratio == pytest.approx((bundle_camera.fx / sim_camera.fx) ** 2, rel=0.08)


def test_without_a_model_camera_the_configured_file_still_decides(tmp_path: Path) -> None:
    path = tmp_path / "narrow.yaml"
    save_camera_info(path, pinhole(60.0))
    from_file = replace(CONFIG, camera=replace(CONFIG.camera, model_camera_file=str(path)))
    by_file, _, _ = first_frame(None, from_file)
    by_argument, _, _ = first_frame(pinhole(60.0))
    default, _, _ = first_frame(None)
    overridden, _, _ = first_frame(default_intrinsics(), from_file)
    masks = [f.truth_mask for f in (by_file, by_argument, default, overridden)]
    assert all(m is not None for m in masks)
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[2], masks[3])  # the argument wins over the file
    assert not np.array_equal(masks[0], masks[2])
