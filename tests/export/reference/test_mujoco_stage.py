"""The MuJoCo stage: a bundle's networks back in torch, the stage's DAgger in both
simulators, and its card section."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from grasprt.bundle import load_bundle
from grasprt.export.reference.mujoco_stage import (
    SIMULATORS,
    MujocoStageConfig,
    _recipe,
    bundle_controller,
    bundle_segmenter,
    carry_card,
    figures_section,
    run_stage,
    write_card,
)

REFERENCE = Path(__file__).resolve().parents[3] / "models" / "reference"


def test_the_bundles_controller_in_torch_acts_as_its_onnx_graph() -> None:
    graph = bundle_controller(REFERENCE)
    rng = np.random.default_rng(0)
    mask = (rng.random((4, 1, 100, 100)) > 0.97).astype(np.float32)
    state = np.concatenate(
        [rng.normal([-0.4, -0.8, 0.2, 1.8, -0.2, 0.6, 3.3], 0.2, (4, 7)), rng.random((4, 1))], 1
    ).astype(np.float32)
    sess = ort.InferenceSession(str(load_bundle(REFERENCE).controller_path))
    names = [i.name for i in sess.get_inputs()]
    want = sess.run(None, dict(zip(names, (mask, state), strict=True)))[0]
    with torch.no_grad():
        got = graph(torch.from_numpy(mask), torch.from_numpy(state)).numpy()
    assert np.abs(got - want).max() < 1e-5


def test_the_bundles_segmenter_in_torch_segments_as_its_onnx_graph() -> None:
    net = bundle_segmenter(REFERENCE)
    sess = ort.InferenceSession(str(load_bundle(REFERENCE).segmenter_path))
    image = np.random.default_rng(1).integers(0, 255, (1, 400, 400, 3), dtype=np.uint8)
    want = sess.run(None, {sess.get_inputs()[0].name: image})[0]
    from grasprt.export.models import SegmenterGraph

    with torch.no_grad():
        got = SegmenterGraph(net)(torch.from_numpy(image)).numpy()
    assert np.abs(got.reshape(want.shape) - want).max() < 1e-4


def test_the_card_section_replaces_an_earlier_one(tmp_path: Path) -> None:
    row = {"success_rate": 0.5, "successes": 1, "attempts": 2}
    evals = {f"{r}: full pipeline, default gap": row for r in SIMULATORS}
    record = {
        "config": {"rounds": 1, "iterations": 1, "frames": [["mujoco", 3], ["sim", 2]], "epochs": 1,
                   "final_epochs": 1, "lr": 1e-3, "select_from": 1},
        "rounds": [{
            "round": 1,
            "expert": {"regrip": True},
            "history": [{"iteration": 0, "anchor": {"sim": {"episodes": 2, "episode_success": 0.5}},
                         "pooled": 3},
                        {"iteration": 1, "mujoco": {"episodes": 1, "episode_success": 1.0},
                         "sim": {"episodes": 1, "episode_success": 0.0}, "pooled": 5, "loss": 0.1}],
            "validation": [{"policy": 1, "success": {r: {"a": 1.0} for r in SIMULATORS},
                            "mean": 1.0}],
            "chosen_policy": 1,
        }],
        "segmenter": {
            "config": {"steps": 3, "lr": 1e-4, "p_fingers": 0.6},
            "start_threshold": 0.7, "threshold": 0.7,
            **{when: {sim: {"frames": 4, "iou": 0.5, "precision": 0.6, "recall": 0.7,
                            "false_alarm_frame_rate": 0.1} for sim in SIMULATORS}
               for when in ("before", "after")},
        },
    }  # fmt: skip
    (tmp_path / "README.md").write_text("# card\n\nkept\n")
    write_card(tmp_path, figures_section(record, evals, {}))
    write_card(tmp_path, figures_section(record, evals, {}))
    text = (tmp_path / "README.md").read_text()
    assert text.count("## MuJoCo stage") == 1 and "kept" in text
    assert "| full pipeline, default gap | 0.500 (1/2) | - | 0.500 (1/2) | - |" in text
    assert "| 0 (anchor) | - / 2 | - / 0.50 | 3 | - |" in text
    assert "Round 1:" in text and "| 1 (chosen) | 1.00 |" in text
    assert "the kinematic recipe's networks" in text
    # A round labelled before the expert's regrip says so; a continued run names its start.
    older = {**record["rounds"][0], "expert": {}}
    continued = {**record, "rounds": [older, {**record["rounds"][0], "round": 2}],
                 "continued_after": 1}  # fmt: skip
    write_card(tmp_path, figures_section(continued, evals, {}))
    text = (tmp_path / "README.md").read_text()
    assert "Round 1 (its expert had no `regrip`):" in text and "Round 2:" in text
    assert "\n2 rounds" in text and "this stage's networks after its round 1" in text
    assert "| after | 0.7 | mujoco (4 frames) | 0.5 | 0.6 | 0.7 | 0.1 |" in text
    weighted = {**continued, "rounds": [{**record["rounds"][0], "gripper_weight": 4.0,
                                         "fresh_draws": True}]}  # fmt: skip
    write_card(tmp_path, figures_section(weighted, evals, {}))
    text = (tmp_path / "README.md").read_text()
    assert (
        "Round 1 (the gripper's error weighted 4 in the loss; episodes drawn afresh for the "
        "round):" in text
    )


@pytest.mark.mujoco
@pytest.mark.slow
def test_a_tiny_stage_trains_in_both_simulators_and_exports_a_bundle(tmp_path: Path) -> None:
    cfg = MujocoStageConfig.quick()
    record = run_stage(REFERENCE, tmp_path / "out", tmp_path / "work", cfg, print)
    # The shipped bundle came out of this stage: its rounds are kept, the new one follows.
    earlier = load_bundle(REFERENCE).provenance["mujoco_stage"]["rounds"]
    *kept, only = record["rounds"]
    assert kept == earlier and record["continued_after"] == len(earlier)
    assert only["round"] == len(earlier) + 1 and only["expert"]["regrip"]
    anchor, row = only["history"]
    assert anchor["anchor"]["sim"]["frames"] >= 20 and "mujoco" not in anchor["anchor"]
    assert row["mujoco"]["frames"] >= 30 and row["sim"]["frames"] >= 20
    assert row["pooled"] == anchor["pooled"] + row["mujoco"]["frames"] + row["sim"]["frames"]
    assert [v["policy"] for v in only["validation"]] == [0, 1]
    out = load_bundle(tmp_path / "out")
    assert out.provenance["mujoco_stage"]["started_from"] == str(REFERENCE)
    # The segmenter is the start's, fine-tuned with the fingers in view, and scored on
    # MuJoCo's frames before and after.
    seg = record["segmenter"]
    assert seg["before"]["mujoco"]["frames"] == cfg.segmenter.mujoco_frames
    assert seg["after"]["sim"]["frames"] == cfg.segmenter.sim_frames
    assert out.mask_threshold == seg["threshold"] == load_bundle(REFERENCE).mask_threshold
    image = np.random.default_rng(2).integers(0, 255, (1, 400, 400, 3), dtype=np.uint8)
    masks = [
        ort.InferenceSession(str(b.segmenter_path)).run(None, {"image": image})[0]
        for b in (out, load_bundle(REFERENCE))
    ]
    assert np.abs(masks[0] - masks[1]).max() > 1e-4  # trained: not the start's weights
    assert "fine-tuned with the fingers in view" in figures_section(record, {}, {})


@pytest.mark.mujoco
@pytest.mark.slow
def test_a_stage_that_keeps_the_segmenter_ships_the_starts_one(tmp_path: Path) -> None:
    cfg = MujocoStageConfig.quick()
    record = run_stage(
        REFERENCE, tmp_path / "out", tmp_path / "work", cfg, print, keep_segmenter=True
    )
    start, out = load_bundle(REFERENCE), load_bundle(tmp_path / "out")
    image = np.random.default_rng(3).integers(0, 255, (1, 400, 400, 3), dtype=np.uint8)
    masks = [
        ort.InferenceSession(str(b.segmenter_path)).run(None, {"image": image})[0]
        for b in (out, start)
    ]
    assert np.abs(masks[0] - masks[1]).max() < 1e-6  # re-exported from the same weights
    assert out.mask_threshold == start.mask_threshold
    # The card still shows the fine-tune that made it, from the start's record.
    assert record["segmenter"] == start.provenance["mujoco_stage"]["segmenter"]
    # The controller is the round's choice: the start's own (policy 0) when the tiny
    # round's policy validated worse, else the new one. Judged by what it computes: the
    # bytes of a re-export hang on the exporter's version.
    rng = np.random.default_rng(4)
    feed = {
        "mask": (rng.random((1, 1, 100, 100)) > 0.99).astype(np.float32),
        "state": rng.uniform(-1, 1, (1, 8)).astype(np.float32),
    }
    actions = [
        ort.InferenceSession(str(b.controller_path)).run(None, feed)[0] for b in (out, start)
    ]
    same = np.abs(actions[0] - actions[1]).max() < 1e-6
    assert same == (record["rounds"][-1]["chosen_policy"] == 0)


def test_the_recipe_names_each_stage_run_that_made_the_bundle() -> None:
    kinematic = "python -m grasprt.export.reference.build --seed 0"
    first = {"config": {"seed": 0, "rounds": 2}, "continued_after": 0}
    once = _recipe(kinematic, first)
    assert once == f"{kinematic}; then python -m grasprt.export.reference.mujoco_stage --seed 0"
    assert _recipe(once, first) == once  # a fresh stage from a stage bundle: its own command
    assert _recipe(kinematic, {**first, "config": {"seed": 0, "regrip": False}}).endswith(
        "mujoco_stage --seed 0 --no-regrip"
    )
    more = {"config": {"seed": 0, "rounds": 1}, "continued_after": 2, "segmenter_kept": True}
    assert _recipe(once, more) == f"{once}; then python -m grasprt.export.reference.mujoco_stage" \
        " --seed 0 --rounds 1 --keep-segmenter"
    weighted = {**more, "config": {"seed": 0, "rounds": 1, "gripper_weight": 4.0,
                                   "fresh_draws": True}}  # fmt: skip
    assert _recipe(once, weighted).endswith(
        "--seed 0 --gripper-weight 4 --fresh-draws --rounds 1 --keep-segmenter"
    )


def test_fresh_draws_give_each_round_its_own_episodes(monkeypatch, tmp_path: Path) -> None:
    import grasprt.export.reference.mujoco_stage as stage

    draws: list[float] = []

    def fake_collect(bundle, graph, cfg, rng, data, robot):  # the first draw of each call
        draws.append(float(rng.random()))
        return {"frames": 0, "episodes": 0, "episode_success": 0.0}

    monkeypatch.setattr(stage, "collect", fake_collect)
    monkeypatch.setattr(stage, "train", lambda *a, **k: 0.0)
    monkeypatch.setattr(stage, "save_controller", lambda *a, **k: None)
    monkeypatch.setattr(stage.Dataset, "save", lambda *a, **k: None)

    def first_draws(fresh: bool, round_no: int) -> list[float]:
        draws.clear()
        cfg = replace(MujocoStageConfig.quick(), fresh_draws=fresh)
        stage.iterate("unused", None, cfg, tmp_path, lambda line: None, round_no)
        return list(draws)

    assert first_draws(False, 1) == first_draws(False, 5)  # as rounds 1-4 ran
    assert first_draws(True, 1) == first_draws(True, 1)
    assert first_draws(True, 1) != first_draws(True, 2)


def test_a_stage_written_elsewhere_keeps_the_starts_card_and_figures(tmp_path: Path) -> None:
    start, out = tmp_path / "start", tmp_path / "out"
    start.mkdir()
    out.mkdir()
    for name, text in (("README.md", "# card\n\nthe recipe\n"), ("dagger.png", "png"),
                       ("bundle.json", "start's")):  # fmt: skip
        (start / name).write_text(text)
    (out / "bundle.json").write_text("the stage's")
    carry_card(start, out)
    assert (out / "README.md").read_text() == "# card\n\nthe recipe\n"
    assert (out / "dagger.png").read_text() == "png"
    assert (out / "bundle.json").read_text() == "the stage's"
