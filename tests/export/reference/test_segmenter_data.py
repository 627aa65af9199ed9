"""The segmenter's composited data: sphere renders, masks by the sim's rule, backgrounds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grasprt.drivers.sim.mask import truth_mask
from grasprt.drivers.sim.optics import View
from grasprt.export.checkpoints import load_segmenter
from grasprt.export.reference.backgrounds import (
    HELD_OUT_FAMILIES,
    PHOTOS_HELD_OUT,
    PHOTOS_TRAIN,
    SAMPLERS,
    TRAIN_FAMILIES,
    BackgroundSource,
    licences,
)
from grasprt.export.reference.segmenter_data import (
    FOCAL_PX,
    CompositeSettings,
    cell_mask,
    composite,
    crop_batch,
    draw_light,
    render_ball,
    sim_frames,
    target_colour,
)
from grasprt.export.reference.train_segmenter import (
    REFERENCE_WIDTHS,
    Scores,
    dilate,
    rescore_checkpoint,
    train_segmenter,
)
from grasprt.types import Intrinsics


def _yellowness(pixels: np.ndarray) -> np.ndarray:
    rgb = pixels.reshape(-1, 3).astype(np.float32)
    return (rgb[:, 0] + rgb[:, 1]) / 2 - rgb[:, 2]


def test_render_ball_covers_the_area_of_its_disc() -> None:
    rng = np.random.default_rng(1)
    drawn = render_ball(
        (200, 200), (100.3, 90.7), 20.0, (99.5, 99.5), target_colour(rng), draw_light(rng)
    )
    assert drawn is not None
    (u0, v0, u1, v1), colour, cover = drawn
    # Near the axis the silhouette is a circle of the asked radius.
    assert cover.sum() == pytest.approx(np.pi * 20.0**2, rel=0.03)
    y, x = np.mgrid[v0:v1, u0:u1]
    outside = np.hypot(x - 100.3, y - 90.7) > 21.5
    assert cover[outside].max() == 0.0
    assert np.all(colour >= 0.0) and np.all(colour[cover == 0] == 0.0)


def test_render_ball_off_the_image_draws_nothing() -> None:
    rng = np.random.default_rng(2)
    assert (
        render_ball((64, 64), (-40.0, 30.0), 5.0, (31.5, 31.5), target_colour(rng), draw_light(rng))
        is None
    )


@pytest.mark.parametrize("radius_px", [2.5, 6.0, 15.0])
def test_composite_mask_follows_the_simulators_truth_rule(radius_px: float) -> None:
    """The same sphere, masked by the composite and by drivers/sim/mask.py, agrees cell for cell."""
    size, principal = 400, (199.5, 199.5)
    centre_px = (143.2, 251.6)
    rng = np.random.default_rng(3)
    drawn = render_ball(
        (size, size), centre_px, radius_px, principal, target_colour(rng), draw_light(rng)
    )
    assert drawn is not None
    (u0, v0, u1, v1), _colour, cov = drawn
    cover = np.zeros((size, size), np.float32)
    cover[v0:v1, u0:u1] = cov
    ours = cell_mask(cover, centre_px) > 0.5
    # The unit sphere render_ball places: depth so that its silhouette has radius_px.
    depth = np.hypot(FOCAL_PX / radius_px, 1.0)
    centre = (
        np.array([(centre_px[0] - 199.5) / FOCAL_PX, (centre_px[1] - 199.5) / FOCAL_PX, 1.0])
        * depth
    )
    intr = Intrinsics(size, size, FOCAL_PX, FOCAL_PX, *principal)
    theirs = truth_mask(View.of(intr, np.eye(4)), centre, 1.0) > 0.5
    assert theirs.sum() > 0
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert iou >= 0.8, f"IoU {iou:.2f} of {theirs.sum()} truth cells"
    # Whatever the rounding at the rim, a cell one step outside the sim's mask is never ours.
    assert not (ours & ~dilate(theirs, 1)).any()


def test_composites_mark_the_yellow_sphere_and_nothing_else() -> None:
    rng = np.random.default_rng(4)
    source = BackgroundSource(("gradient", "noise", "wood"))
    settings = CompositeSettings(p_target=1.0, p_clutter=0.0)
    brighter = 0
    for _ in range(12):
        image, mask, family = composite(rng, source, 160, 160, settings=settings)
        assert image.dtype == np.uint8 and image.shape == (160, 160, 3)
        assert mask.shape == (40, 40) and set(np.unique(mask)) <= {0.0, 1.0}
        assert family in source.families
        assert mask.sum() >= 1  # the centre cell at least, even for a sphere of 2 px
        cells = image.reshape(40, 4, 40, 4, 3).transpose(0, 2, 1, 3, 4)
        on = _yellowness(cells[mask > 0])
        off = _yellowness(cells[mask == 0])
        brighter += float(np.median(on)) > float(np.median(off))
    # Lighting, shadows and noise vary, but the masked cells are the yellow ones.
    assert brighter >= 10


def test_composites_without_the_target_have_an_empty_mask_despite_clutter() -> None:
    rng = np.random.default_rng(5)
    settings = CompositeSettings(p_target=0.0, p_clutter=1.0)
    for _ in range(5):
        image, mask, _family = composite(
            rng, BackgroundSource(TRAIN_FAMILIES), 128, 128, settings=settings
        )
        assert mask.sum() == 0.0
        assert image.std() > 0.0


def test_composite_size_must_be_whole_mask_cells() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        composite(np.random.default_rng(0), BackgroundSource(("noise",)), 130, 128)


def test_crop_batch_shapes_and_positives() -> None:
    images, masks = crop_batch(np.random.default_rng(6), BackgroundSource(TRAIN_FAMILIES), 16, 96)
    assert images.shape == (16, 96, 96, 3) and images.dtype == np.uint8
    assert masks.shape == (16, 1, 24, 24)
    with_target = (masks.sum(axis=(1, 2, 3)) > 0).sum()
    assert 8 <= with_target <= 16  # the target is in about 85 % of them


def test_composites_are_reproducible_from_the_seed() -> None:
    source = BackgroundSource(TRAIN_FAMILIES)
    a = composite(np.random.default_rng(7), source, 96, 96)
    b = composite(np.random.default_rng(7), source, 96, 96)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("family", sorted(SAMPLERS))
def test_every_background_family_gives_a_finite_rgb_image(family: str) -> None:
    img = SAMPLERS[family](np.random.default_rng(8), 48, 64)
    assert img.shape == (48, 64, 3) and img.dtype == np.float32
    assert np.isfinite(img).all() and img.min() >= 0.0 and img.max() <= 255.0


def test_held_out_backgrounds_are_disjoint_from_training_and_licensed() -> None:
    assert not set(TRAIN_FAMILIES) & set(HELD_OUT_FAMILIES)
    assert not set(PHOTOS_TRAIN) & set(PHOTOS_HELD_OUT)
    terms = licences(TRAIN_FAMILIES + HELD_OUT_FAMILIES)
    assert set(terms) == set(PHOTOS_TRAIN) | set(PHOTOS_HELD_OUT)
    assert all(terms.values())
    with pytest.raises(ValueError, match="unknown background"):
        BackgroundSource(("marble",))


def test_sim_frames_show_the_sphere_with_its_truth_mask() -> None:
    frames = list(sim_frames(2, seed=3, clutter=2))
    assert len(frames) == 2
    for image, mask, distance in frames:
        assert image.shape == (400, 400, 3) and image.dtype == np.uint8
        assert mask.shape == (100, 100) and mask.sum() >= 1
        # The wrist camera is never closer than ~20 cm to the sphere on the table.
        assert 0.15 < distance < 0.6
        cells = image.reshape(100, 4, 100, 4, 3).transpose(0, 2, 1, 3, 4)
        assert np.median(_yellowness(cells[mask > 0])) > np.median(_yellowness(cells[mask == 0]))


def test_scores_count_cells_and_frames() -> None:
    truth = np.zeros((100, 100), np.float32)
    truth[10:12, 10:12] = 1.0
    scores = Scores()
    scores.add(truth.copy(), truth)  # perfect
    prob = np.zeros_like(truth)
    prob[10, 10] = 0.9  # one of four found
    prob[60, 60] = 0.9  # a false alarm far away
    scores.add(prob, truth)
    summary = scores.summary()
    assert summary["frames"] == 2 and summary["frames_with_target"] == 2
    assert summary["precision"] == pytest.approx(5 / 6, abs=1e-4)
    assert summary["recall"] == pytest.approx(5 / 8, abs=1e-4)
    assert summary["target_found_rate"] == 1.0
    assert summary["false_alarm_frame_rate"] == 0.5


@pytest.mark.slow
def test_quick_training_writes_a_loadable_checkpoint_and_its_figures(tmp_path) -> None:
    ckpt = tmp_path / "segmenter.pt"
    figures = train_segmenter(ckpt, seed=1, quick=True)
    net = load_segmenter(ckpt)
    assert net.widths == REFERENCE_WIDTHS
    written = json.loads((tmp_path / "segmenter_metrics.json").read_text())
    assert written["widths"] == list(REFERENCE_WIDTHS) == figures["widths"]
    for key in ("sim", "sim_clutter4", "composites_held_out_backgrounds"):
        assert written[key]["frames"] > 0
        assert 0.0 <= written[key]["recall"] <= 1.0
    assert written["training_composites"] > 0 and written["flops_400x400"] == net.flops()
    # Scoring is deterministic: the same checkpoint on the same held-out frames.
    again = rescore_checkpoint(ckpt, seed=1, quick=True)
    assert again["sim"] == figures["sim"]
    assert again["composites_held_out_backgrounds"] == figures["composites_held_out_backgrounds"]


def test_fingers_in_front_hide_the_target_and_never_add_to_its_mask() -> None:
    # The same seed draws the same background and sphere with and without fingers (they
    # are drawn after both), so the masks compare cell for cell; the sensor's draws come
    # later and differ, so the images do not.
    source = BackgroundSource(TRAIN_FAMILIES)
    bare = CompositeSettings(p_target=1.0, p_clutter=0.0, radius_px=(6.0, 14.0))
    with_fingers = CompositeSettings(
        p_target=1.0, p_clutter=0.0, radius_px=(6.0, 14.0), p_fingers=1.0, p_fingers_at_target=1.0
    )
    cut = 0
    for seed in range(30):
        _, m0, _ = composite(np.random.default_rng(seed), source, 128, 128, settings=bare)
        _, m1, _ = composite(np.random.default_rng(seed), source, 128, 128, settings=with_fingers)
        assert not (m1 > m0).any()  # a finger never makes a cell the target's
        cut += int(m1.sum() < m0.sum())
    # Drawn against the target, they hide some of it in many frames, not in all.
    assert 5 <= cut <= 29


def test_the_recipe_draws_no_fingers() -> None:
    assert CompositeSettings().p_fingers == 0.0


def test_a_hidden_centre_is_not_forced_into_the_mask() -> None:
    cover = np.zeros((16, 16), np.float32)
    hidden = np.zeros((16, 16), np.float32)
    hidden[4:8, 4:8] = 1.0
    assert cell_mask(cover, (5.0, 5.0))[1, 1] == 1.0  # the sim's rule: the centre cell
    assert cell_mask(cover, (5.0, 5.0), hidden).sum() == 0.0  # unless a finger covers it
    assert cell_mask(cover, (12.0, 12.0), hidden)[3, 3] == 1.0
