"""The perception-health gate: each check on synthetic masks, the jump bound against a
real projection, and the gate in the simulator with distractors the segmenter takes
for the target."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import color_segmenter, constant_controller, write_bundle

from grasprt.bundle import load_bundle
from grasprt.config import PerceptionSettings, RunConfig, build_run_config
from grasprt.drivers.sim.config import SimConfig, gap_preset
from grasprt.drivers.sim.kind import sim_drivers
from grasprt.errors import BundleError, ConfigError
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER
from grasprt.runtime.perception import (
    DEFAULT_AREA,
    PerceptionGate,
    bearing_step,
    blobs,
    mask_gain,
)
from grasprt.runtime.record_reader import read_record
from grasprt.runtime.runner import Run
from grasprt.types import Intrinsics

KIN = Kinematics(SAWYER)
NEUTRAL = np.array(SAWYER.neutral)
# The reference bundle's camera: 400x400, 80 degrees.
CAMERA = Intrinsics(400, 400, 238.35072, 238.35072, 199.5, 199.5)
SHAPE = (100, 100)


def gate(**settings: object) -> PerceptionGate:
    return PerceptionGate(PerceptionSettings(**settings), KIN, CAMERA, SHAPE)  # type: ignore[arg-type]


def disc(cx: float, cy: float, r: float = 2.0) -> np.ndarray:
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.float32)


EMPTY = np.zeros(SHAPE, dtype=np.float32)


def feed(g: PerceptionGate, masks: list[np.ndarray], q: np.ndarray = NEUTRAL) -> list[str | None]:
    return [
        None if (h := g.check(m, q, 0.1 * i)) is None else h.check for i, m in enumerate(masks)
    ]


def test_one_steady_blob_never_holds() -> None:
    assert feed(gate(), [disc(50, 50)] * 20) == [None] * 20


def test_lost_holds_after_n_empty_cycles_once_seen_and_recovers() -> None:
    got = feed(gate(lost_cycles=3), [disc(50, 50), EMPTY, EMPTY, EMPTY, EMPTY, disc(50, 50)])
    assert got == [None, None, None, "lost", "lost", None]


def test_closed_fingers_hide_the_target_without_a_lost_hold() -> None:
    # Seen, then the hand closes on it (gripper 0.7): empty masks are what closed fingers
    # show. Reopened (gripper 0.1) with nothing in view, the rule is back.
    g = gate(lost_cycles=2)
    masks = [disc(50, 50), EMPTY, EMPTY, EMPTY, EMPTY, EMPTY]
    grips = [0.0, 0.7, 0.7, 0.7, 0.1, 0.1]
    pairs = enumerate(zip(masks, grips, strict=True))
    got = [g.check(m, NEUTRAL, 0.1 * i, gr) for i, (m, gr) in pairs]
    assert [None if h is None else h.check for h in got] == [None, None, None, None, "lost", "lost"]
    strict = gate(lost_cycles=2, lost_ignored_closed=1.0)
    got = [strict.check(m, NEUTRAL, 0.1 * i, 0.7) for i, m in enumerate(masks[:3])]
    assert [None if h is None else h.check for h in got] == [None, None, "lost"]


def hand_at(x0: int, x1: int) -> np.ndarray:
    hand = np.zeros(SHAPE, dtype=bool)
    hand[:, x0:x1] = True
    return hand


def test_a_target_gone_behind_the_hand_is_not_lost_for_hidden_cycles() -> None:
    # Last seen at x = 50 (radius 2): a hand from x = 54 on touches it (2 + jitter 4 px).
    g = gate(lost_cycles=2, hidden_cycles=3)
    got = [g.check(disc(50, 50), NEUTRAL, 0.0)]
    got += [g.check(EMPTY, NEUTRAL, 0.1 * i, 0.0, hand_at(54, 70)) for i in range(1, 6)]
    assert [None if h is None else h.check for h in got] == [None, None, None, None, "lost", "lost"]


def test_a_hand_elsewhere_in_the_view_does_not_excuse_a_lost_target() -> None:
    g = gate(lost_cycles=2)
    got = [g.check(disc(50, 50), NEUTRAL, 0.0)]
    got += [g.check(EMPTY, NEUTRAL, 0.1 * i, 0.0, hand_at(60, 70)) for i in range(1, 4)]
    assert [None if h is None else h.check for h in got] == [None, None, "lost", "lost"]


def test_an_empty_mask_before_the_target_was_seen_is_not_lost() -> None:
    assert feed(gate(lost_cycles=2), [EMPTY] * 10) == [None] * 10


def test_two_comparable_blobs_hold_and_a_speck_does_not() -> None:
    two = np.maximum(disc(30, 50), disc(70, 50))
    speck = disc(30, 50).copy()
    speck[80, 80] = 1.0  # one pixel: noise, below min_blob_px
    g = gate()
    h = g.check(two, NEUTRAL, 0.0)
    assert h is not None and h.check == "blobs" and "2 blobs" in h.reason
    assert g.check(speck, NEUTRAL, 0.1) is None


def test_a_second_blob_below_the_ratio_is_ignored() -> None:
    big, small = disc(30, 50, 4.0), disc(70, 50, 1.5)  # 49 px and 9 px
    assert gate(blob_ratio=0.8).check(np.maximum(big, small), NEUTRAL, 0.0) is None
    assert gate(blob_ratio=0.1).check(np.maximum(big, small), NEUTRAL, 0.0) is not None


def test_a_blob_cut_by_the_border_is_no_rival_unless_asked() -> None:
    at_edge = np.maximum(disc(50, 50), disc(0, 50))  # 13 px in view and 8 px at x = 0
    same = np.maximum(disc(50, 50), disc(1, 50))
    assert blobs(same).edge.tolist() == [False, True]
    assert gate(blob_ratio=0.5).check(at_edge, NEUTRAL, 0.0) is None
    held = gate(blob_ratio=0.5, edge_rivals=True).check(at_edge, NEUTRAL, 0.0)
    assert held is not None and held.check == "blobs"


def test_once_tracked_a_rival_beyond_the_bound_is_ignored_and_one_within_holds() -> None:
    g = gate(jitter_px=4.0)  # the arm still: the bound is the jitter allowance
    assert g.check(disc(50, 50), NEUTRAL, 0.0) is None
    assert g.check(np.maximum(disc(50, 50), disc(80, 50)), NEUTRAL, 0.1) is None
    both_near = np.maximum(disc(48, 50, 1.5), disc(53, 50, 1.5))
    held = g.check(both_near, NEUTRAL, 0.2)
    assert held is not None and held.check == "blobs"


def test_area_outside_the_configured_range_holds() -> None:
    g = gate(area=(0.001, 0.01))  # 10 .. 100 px of 10^4
    assert feed(g, [disc(50, 50, 3.0)]) == [None]  # 29 px
    assert g.check(disc(50, 50, 1.0), NEUTRAL, 0.1).check == "area"  # 5 px
    assert g.check(np.ones(SHAPE, np.float32), NEUTRAL, 0.2).check == "area"


def test_default_area_refuses_a_mask_that_fills_the_view() -> None:
    assert DEFAULT_AREA[1] == 0.25
    half = np.zeros(SHAPE, np.float32)
    half[:60] = 1.0
    assert gate().check(half, NEUTRAL, 0.0).check == "area"


def test_the_bundles_declared_area_is_used_unless_configured() -> None:
    declared = PerceptionGate(PerceptionSettings(), KIN, CAMERA, SHAPE, bundle_area=(0.002, 0.5))
    assert declared.check(disc(50, 50, 1.0), NEUTRAL, 0.0).check == "area"
    mine = PerceptionGate(
        PerceptionSettings(area=(0.0, 0.5)), KIN, CAMERA, SHAPE, bundle_area=(0.002, 0.5)
    )
    assert mine.check(disc(50, 50, 1.0), NEUTRAL, 0.0) is None


def test_a_jump_while_the_arm_is_still_holds_until_the_mask_comes_back() -> None:
    g = gate(jitter_px=4.0)
    got = feed(g, [disc(50, 50), disc(52, 51), disc(80, 20), disc(80, 20), disc(51, 50)])
    assert got == [None, None, "jump", "jump", None]


def test_the_same_jump_is_accepted_when_the_arm_moved_enough() -> None:
    g = gate()
    assert g.check(disc(50, 50), NEUTRAL, 0.0) is None
    moved = NEUTRAL.copy()
    moved[0] += 0.05  # the base turns: the whole view sweeps sideways
    assert g.jump_bound_px(0.1) == pytest.approx(4.0)
    assert g.check(disc(80, 50), moved, 0.1) is None


def test_a_moving_target_widens_the_bound_with_time() -> None:
    g = gate(target_speed=0.1, near_m=0.1)
    assert g.check(disc(50, 50), NEUTRAL, 0.0) is None
    # 0.1 m/s for 1 s at 0.1 m is 1 rad of bearing: far more than 30 px.
    assert g.check(disc(80, 50), NEUTRAL, 1.0) is None


def test_disabled_never_holds() -> None:
    two = np.maximum(disc(30, 50), disc(70, 50))
    assert feed(gate(enabled=False), [disc(50, 50), EMPTY, EMPTY, EMPTY, two]) == [None] * 5


def test_blobs_centroid_is_the_largest_blobs() -> None:
    found = blobs(np.maximum(disc(20, 30, 4.0), disc(70, 70, 1.0)))
    assert found.centroid == pytest.approx((20.0, 30.0))
    assert list(found.areas) == [49, 5] and found.total == 54


def test_blobs_finds_what_the_default_labelling_finds() -> None:
    # blobs() runs BBDT for speed; its components must be the default algorithm's, in
    # the same order (the largest-first sort is stable, so ties keep label order).
    import cv2

    rng = np.random.default_rng(0)
    for trial in range(300):
        m = np.zeros(SHAPE, dtype=np.uint8)
        for _ in range(int(rng.integers(1, 8))):
            x, y = (int(v) for v in rng.integers(0, 100, 2))
            cv2.circle(m, (x, y), int(rng.integers(1, 20)), 1, -1)
        if trial % 3 == 0:
            m |= (rng.random(SHAPE) < 0.05).astype(np.uint8)
        n, _, stats, cents = cv2.connectedComponentsWithStats(m, connectivity=8)
        found = blobs(m.astype(np.float32))
        order = np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")
        assert found.areas.size == n - 1
        assert np.array_equal(found.areas, stats[1:, cv2.CC_STAT_AREA][order])
        assert np.array_equal(found.centroids, cents[1:][order])


def test_mask_gain_worked_by_hand() -> None:
    # The 100 px mask of a 400 px image: f = 238.35 / 4, principal point 49.5, corner
    # -0.5 / 99.5: 50 px each way, tan = hypot(50, 50) / f.
    f = 238.35072 / 4
    tan = math.hypot(50, 50) / f
    assert mask_gain(CAMERA, 100, 100) == pytest.approx(f * (1 + tan**2))


def project(q: np.ndarray, point: np.ndarray) -> np.ndarray | None:
    """A base-frame point in mask pixels from the wrist camera at q (None: behind it)."""
    cam = KIN.poses(q).camera
    p = cam[:3, :3].T @ (point - cam[:3, 3])
    if p[2] <= 0:
        return None
    f, c = CAMERA.fx / 4, (CAMERA.cx + 0.5) / 4 - 0.5
    return np.array([f * p[0] / p[2] + c, f * p[1] / p[2] + c])


def test_the_jump_bound_holds_for_a_real_projection() -> None:
    # A point in view, the arm moved by random small steps: the point's pixel moves no
    # further than the bound derived in perception.py says it can.
    rng = np.random.default_rng(3)
    gain = mask_gain(CAMERA, 100, 100)
    checked = 0
    for _ in range(300):
        q0 = NEUTRAL + rng.normal(0, 0.2, 7)
        cam = KIN.poses(q0).camera
        depth = rng.uniform(0.15, 0.8)
        ray = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), 1.0])
        point = cam[:3, 3] + cam[:3, :3] @ (ray / np.linalg.norm(ray) * depth)
        q1 = q0 + rng.normal(0, 0.01, 7)
        a, b = project(q0, point), project(q1, point)
        if a is None or b is None or not ((b >= -0.5) & (b <= 99.5)).all():
            continue
        near = float(min(np.linalg.norm(point - KIN.poses(q).camera[:3, 3]) for q in (q0, q1)))
        bound = gain * bearing_step(KIN, q0, q1, near)
        assert np.linalg.norm(b - a) <= bound
        checked += 1
    assert checked > 150


def test_perception_settings_are_validated_and_loaded(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text("[perception]\nenabled = false\nlost_cycles = 5\narea = [0.001, 0.2]\n")
    cfg = build_run_config(f, {})
    assert cfg.perception == PerceptionSettings(enabled=False, lost_cycles=5, area=(0.001, 0.2))
    for bad in (
        "lost_cycles = 0", "lost_ignored_closed = 1.5", "hidden_cycles = -1",
        "blob_ratio = 1.5", "area = [0.3, 0.1]", "near_m = 0",
    ):  # fmt: skip
        f.write_text(f"[perception]\n{bad}\n")
        with pytest.raises(ConfigError, match=r"\[perception\]"):
            build_run_config(f, {})


def test_a_bundle_with_a_bad_mask_area_is_refused(tmp_path: Path) -> None:
    b = write_bundle(tmp_path / "b", color_segmenter(), constant_controller([0.0] * 8))
    doc = json.loads((b / "bundle.json").read_text())
    doc.setdefault("provenance", {})["mask_area"] = [0.0005, 0.02]
    (b / "bundle.json").write_text(json.dumps(doc))
    assert load_bundle(b).provenance["mask_area"] == [0.0005, 0.02]
    doc["provenance"]["mask_area"] = [0.5, "all"]
    (b / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="mask_area"):
        load_bundle(b)


# --- in the simulator ------------------------------------------------------------------


def clutter_run(tmp_path: Path, perception: PerceptionSettings) -> tuple[Run, list]:
    # A segmenter that takes the sim's orange clutter for the yellow sphere, and a
    # controller that asks for nothing: with 12 distractors some lie in view.
    bundle = write_bundle(
        tmp_path / "bundle", color_segmenter(hue_tolerance=1.0), constant_controller([0.0] * 8)
    )
    cfg = RunConfig(
        robot="sim",
        bundle=str(bundle),
        clock="sim",
        episodes=3,
        max_steps=10,
        record=str(tmp_path / "run.mcap"),
        perception=perception,
    )
    drivers = sim_drivers(cfg, load_bundle(bundle), SimConfig(gap=gap_preset("none"), clutter=12))
    commands: list = []
    send = drivers.robot.command
    drivers.robot.command = lambda cmd: (commands.append(cmd), send(cmd))[1]  # type: ignore[method-assign]
    return Run(cfg, drivers=drivers), commands


def test_distractors_hold_the_arm_with_a_named_reason_in_the_record(tmp_path: Path) -> None:
    run, commands = clutter_run(tmp_path, PerceptionSettings())
    s = run.execute().summary()
    assert s["perception_holds"].get("blobs", 0) > 0 and not s["faults"]
    rec = read_record(tmp_path / "run.mcap")
    held = [c for c in rec.cycles if (c["reason"] or "").startswith("perception: blobs")]
    assert len(held) == s["perception_holds"]["blobs"]
    assert all(c["verdict"] == "hold" and c["command"] is None for c in held)
    assert all(c["mask_area"] > 0 for c in held)  # the mask that was refused is kept
    # Only the cycles that passed the gate sent a command.
    assert len(commands) == sum(c["verdict"] == "ok" for c in rec.cycles)
    assert rec.summary["perception_holds"] == s["perception_holds"]


def test_the_same_scene_with_the_gate_off_commands_every_cycle(tmp_path: Path) -> None:
    run, commands = clutter_run(tmp_path, PerceptionSettings(enabled=False))
    s = run.execute().summary()
    assert s["perception_holds"] == {} and s["holds"] == 0
    assert len(commands) == s["steps"] == 30
