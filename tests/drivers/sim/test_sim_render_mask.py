"""The rendered wrist camera: where the sphere appears, its truth mask, determinism."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from grasprt.calibration.camera_info import save_camera_info
from grasprt.drivers.sim import SimConfig
from grasprt.drivers.sim.ik import solve_ik
from grasprt.drivers.sim.mask import truth_mask
from grasprt.drivers.sim.optics import View
from grasprt.errors import ConfigError
from grasprt.types import Intrinsics


def project(intr: Intrinsics, camera_pose: np.ndarray, point: np.ndarray) -> np.ndarray:
    """OpenCV's projection (distortion included): independent of the sim's own optics."""
    rot = camera_pose[:3, :3].T
    rvec, _ = cv2.Rodrigues(rot)
    tvec = -rot @ camera_pose[:3, 3]
    dist = np.asarray(intr.dist, np.float64) if intr.dist else None
    uv, _ = cv2.projectPoints(point[None, :].astype(np.float64), rvec, tvec, intr.matrix(), dist)
    return uv[0, 0]


def yellow_pixels(image: np.ndarray) -> np.ndarray:
    """The paper's ground truth in simulation: an HSV colour filter for the sphere's yellow."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    return cv2.inRange(hsv, (20, 140, 60), (36, 255, 255)) > 0


def in_image(uv: np.ndarray, intr: Intrinsics, margin: float = 0.0) -> bool:
    return bool(
        margin - 0.5 <= uv[0] <= intr.width - 0.5 - margin
        and margin - 0.5 <= uv[1] <= intr.height - 0.5 - margin
    )


def test_start_pose_looks_down_from_30_to_40_cm(make) -> None:
    sim = make()
    for seed in range(20):
        sim.world.reset(seed)
        pose = sim.world.camera_pose()
        # Joint noise tilts the view a little, never far from straight down.
        assert pose[:3, 2] @ np.array([0.0, 0.0, -1.0]) > np.cos(np.radians(10))
        height = pose[2, 3] - sim.world.table_z
        assert 0.27 <= height <= 0.43


def test_a_grid_position_moves_only_the_sphere(make) -> None:
    sim = make()
    sim.world.reset(7)
    drawn_q, drawn_look = sim.world.true_q(), sim.world.look
    sim.world.reset(7, sphere_xy=(0.5, 0.1))
    assert np.allclose(sim.world.sphere_position()[:2], (0.5, 0.1))
    assert np.array_equal(sim.world.true_q(), drawn_q)
    assert sim.world.look == drawn_look
    with pytest.raises(ConfigError, match="must be finite"):
        sim.world.reset(7, sphere_xy=(float("nan"), 0.0))


def test_sphere_projects_inside_its_mask_and_the_yellow_pixels(make) -> None:
    sim = make()
    intr = sim.camera.intrinsics
    seen = 0
    for seed in range(12):
        sim.world.reset(seed)
        frame = sim.camera.latest()
        assert frame is not None and frame.truth_mask is not None
        uv = project(intr, sim.world.camera_pose(), sim.world.sphere_position())
        if not in_image(uv, intr, margin=8):
            continue
        seen += 1
        col, row = np.floor(uv + 0.5).astype(int)
        assert frame.truth_mask[row // 4, col // 4] == 1.0
        # The mask is a small blob around that pixel, nothing elsewhere.
        rows, cols = np.nonzero(frame.truth_mask)
        assert np.all(np.abs(rows - row // 4) <= 2) and np.all(np.abs(cols - col // 4) <= 2)
        ys, xs = np.nonzero(yellow_pixels(frame.image))
        assert xs.size > 10
        assert np.hypot(xs.mean() - uv[0], ys.mean() - uv[1]) < 1.0
    assert seen >= 9


def test_mask_is_never_empty_while_the_sphere_is_in_view(make) -> None:
    sim = make()
    model = sim.camera.model_intrinsics
    in_view = 0
    for seed in range(300):
        sim.world.reset(seed)
        snap = sim.world.snapshot()
        mask = truth_mask(View.of(model, snap.camera_pose), snap.target.centre, snap.target.radius)
        assert mask.shape == (100, 100) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        uv = project(model, snap.camera_pose, snap.target.centre)
        if in_image(uv, model):
            in_view += 1
            assert mask.sum() >= 1
        else:
            assert mask.sum() == 0
    # The start pose keeps the sphere in view most of the time.
    assert in_view >= 270


def test_a_far_sphere_smaller_than_a_mask_pixel_keeps_its_centre_pixel() -> None:
    model = Intrinsics(400, 400, 238.35, 238.35, 199.5, 199.5)
    pose = np.eye(4)
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])  # looking straight down
    pose[:3, 3] = (0.0, 0.0, 0.6)
    mask = truth_mask(View.of(model, pose), np.array([0.05, 0.02, 0.0]), 0.0137 / 2)
    uv = project(model, pose, np.array([0.05, 0.02, 0.0]))
    col, row = np.floor(uv + 0.5).astype(int)
    assert mask[row // 4, col // 4] == 1.0
    assert 1 <= mask.sum() <= 4


def test_close_up_mask_matches_the_yellow_pixels(make) -> None:
    sim = make(SimConfig(), seed=4)
    sphere = sim.world.sphere_position()
    # The camera 10 cm straight above the sphere, and 3 cm to one side.
    for offset in (np.array([0.0, 0.0, 0.10]), np.array([0.03, 0.0, 0.10])):
        q = solve_ik(sim.world.kin, sim.world.true_q(), sphere + offset, frame="camera")
        sim.world.arm.reset(q)
        sim.clock.advance(0.1)
        frame = sim.camera.latest()
        assert frame is not None and frame.truth_mask is not None
        yellow = yellow_pixels(frame.image).astype(np.float32)
        # The half-coverage rule applied to the colour filter's pixels.
        from_colour = cv2.resize(yellow, (100, 100), interpolation=cv2.INTER_AREA) >= 0.5
        truth = frame.truth_mask > 0.5
        iou = (from_colour & truth).sum() / (from_colour | truth).sum()
        assert truth.sum() >= 20
        assert iou > 0.85


def test_same_seed_same_frames_other_seed_other_frames(make) -> None:
    a, b, c = make(seed=11), make(seed=11), make(seed=12)
    for sim in (a, b, c):
        sim.clock.advance(0.1)
    fa, fb, fc = a.camera.latest(), b.camera.latest(), c.camera.latest()
    assert fa is not None and fb is not None and fc is not None
    assert np.array_equal(fa.image, fb.image)
    assert np.array_equal(fa.truth_mask, fb.truth_mask)
    assert fa.stamp == fb.stamp
    assert not np.array_equal(fa.image, fc.image)


def test_clutter_changes_the_picture_not_the_mask(make) -> None:
    plain = make(SimConfig(), seed=21)
    busy = make(SimConfig(clutter=8), seed=21)
    fp, fb = plain.camera.latest(), busy.camera.latest()
    assert fp is not None and fb is not None
    assert np.array_equal(fp.truth_mask, fb.truth_mask)
    assert len(busy.world.clutter) == 8
    assert np.mean(np.any(fp.image != fb.image, axis=2)) > 0.002
    # Nothing in the clutter passes for the target's yellow.
    assert yellow_pixels(fb.image).sum() == pytest.approx(yellow_pixels(fp.image).sum(), rel=0.3)


def test_a_calibrated_camera_with_distortion_sees_the_sphere_where_opencv_projects_it(
    make, tmp_path: Path
) -> None:
    real = Intrinsics(640, 480, 380.0, 381.0, 322.5, 236.0, (-0.28, 0.09, 0.001, -0.0005, -0.012))
    path = tmp_path / "wrist.yaml"
    save_camera_info(path, real)
    sim = make(SimConfig(camera_file=str(path)), seed=2)
    assert sim.camera.intrinsics == real
    checked = 0
    for seed in range(2, 10):
        sim.world.reset(seed)
        frame = sim.camera.latest()
        assert frame is not None and frame.image.shape == (480, 640, 3)
        assert frame.truth_mask is not None and frame.truth_mask.shape == (100, 100)
        uv = project(real, sim.world.camera_pose(), sim.world.sphere_position())
        if not in_image(uv, real, margin=10):
            continue
        checked += 1
        ys, xs = np.nonzero(yellow_pixels(frame.image))
        assert xs.size > 5
        assert np.hypot(xs.mean() - uv[0], ys.mean() - uv[1]) < 1.0
    assert checked >= 4
