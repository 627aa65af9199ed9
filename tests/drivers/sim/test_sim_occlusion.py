"""What the hand hides: the true mask leaves out what a finger in front covers (the
renderer's painter's rule), and the hand mask is where the hand's parts lie in the view."""

from __future__ import annotations

import cv2
import numpy as np

from grasprt.drivers.sim.mask import hand_mask, truth_mask
from grasprt.drivers.sim.optics import View, ray_box_hits
from grasprt.drivers.sim.scene import Box
from grasprt.types import Intrinsics

# A camera at the origin looking along +z (optical frame = base frame).
VIEW = View.of(Intrinsics(400, 400, 240.0, 240.0, 199.5, 199.5), np.eye(4))
CENTRE, RADIUS = np.array([0.0, 0.0, 0.3]), 0.00685


def finger(x: float, z: float, half=(0.003, 0.02, 0.005)) -> Box:
    return Box(np.array([x, 0.0, z]), np.eye(3), np.asarray(half), (0.1, 0.1, 0.1))


def test_a_finger_in_front_hides_the_sphere_and_one_behind_does_not() -> None:
    bare = truth_mask(VIEW, CENTRE, RADIUS)
    assert bare.sum() > 0
    assert truth_mask(VIEW, CENTRE, RADIUS, (finger(0.0, 0.2, (0.02, 0.02, 0.005)),)).sum() == 0
    assert np.array_equal(truth_mask(VIEW, CENTRE, RADIUS, (finger(0.0, 0.4),)), bare)


def test_a_finger_across_half_the_sphere_hides_that_half() -> None:
    # In front, its left edge on the optical axis: it covers the sphere's right half.
    half = truth_mask(VIEW, CENTRE, RADIUS, (finger(0.003, 0.2),))
    bare = truth_mask(VIEW, CENTRE, RADIUS)
    cols = np.nonzero(bare.any(axis=0))[0]
    assert 0 < half.sum() < bare.sum()
    assert half[:, cols.max()].sum() == 0  # the right-hand column is behind the finger
    assert half[:, cols.min()].sum() == bare[:, cols.min()].sum()


def test_the_hand_mask_covers_the_cells_whose_rays_pass_through_a_box() -> None:
    box = Box(np.array([0.01, -0.02, 0.2]), _turn(0.4), np.array([0.004, 0.03, 0.006]), (0, 0, 0))
    got = hand_mask(VIEW, (box,))
    # Each mask cell's centre ray (cell (i, j) is centred on model pixel 4j + 1.5).
    us = np.arange(100) * 4 + 1.5
    x = ((us - VIEW.cx) / VIEW.fx)[None, :]
    y = ((us - VIEW.cy) / VIEW.fy)[:, None]
    want = ray_box_hits(x, y, VIEW.to_camera(box.centre), VIEW.rot.T @ box.rot, box.half)
    assert want.sum() > 20
    # The silhouette to within a cell: every cell it covers, and none more than a cell off.
    assert not (want & ~got).any()
    grown = cv2.dilate(want.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert not (got & ~grown).any()


def test_no_parts_no_hand() -> None:
    assert not hand_mask(VIEW, ()).any()


def _turn(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
