"""The one-command recipe, end to end at tiny sizes: train, select, export, evaluate, card."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from grasprt.bundle import load_bundle
from grasprt.drivers.sim.expert import ExpertConfig
from grasprt.export.models import Controller
from grasprt.export.reference.build import (
    EVALS,
    EXPERT_EVALS,
    _stage_done,
    build_controller,
    main,
    model_card,
)
from grasprt.export.reference.dagger import DaggerConfig


@pytest.mark.slow
def test_quick_build_leaves_a_loadable_bundle_its_figures_and_a_card(tmp_path: Path) -> None:
    out, work = tmp_path / "bundle", tmp_path / "work"
    result = CliRunner().invoke(main, ["--quick", "--out", str(out), "--work", str(work)])
    assert result.exit_code == 0, result.output

    bundle = load_bundle(out)
    recipe = "python -m grasprt.export.reference.build --quick --seed 0"
    assert bundle.provenance["recipe"] == recipe
    evals = json.loads((out / "eval.json").read_text())
    assert set(evals) == {name for name, _ in EVALS} | {name for name, _ in EXPERT_EVALS}
    for s in evals.values():
        assert s["attempts"] == s["settings"]["grid"] * s["settings"]["repeats"]
        assert s["stopped"] is None
    assert (out / "dagger.png").stat().st_size > 0

    dagger = json.loads((work / "dagger.json").read_text())
    card = (out / "README.md").read_text()
    assert "QUICK SMOKE BUILD" in card
    assert f"**policy {dagger['chosen_policy']}**" in card
    assert "Policy selection" in card
    # The status line is the build's own verdict from its own figures: a tiny build
    # meets no target, and says so.
    assert "targets NOT met" in card

    # A second build finds every stage done for the same settings and only re-exports
    # and re-evaluates: the controller checkpoint is not retrained.
    stamps = {f: (work / f).stat().st_mtime_ns for f in ("controller.pt", "segmenter.pt")}
    again = CliRunner().invoke(main, ["--quick", "--out", str(out), "--work", str(work)])
    assert again.exit_code == 0, again.output
    assert {f: (work / f).stat().st_mtime_ns for f in stamps} == stamps


def _committed_card(**options: float) -> str:
    """The model card of the committed bundle's own record, training options changed."""
    root = Path(__file__).resolve().parents[3] / "models" / "reference"
    prov = json.loads((root / "bundle.json").read_text())["provenance"]
    evals = json.loads((root / "eval.json").read_text())
    dagger = {**prov["dagger"], "frames": prov["dagger"]["history"][-1]["aggregate"]}
    dagger["config"] = {**dagger["config"], **options}
    return model_card(0, False, dagger, prov["segmenter_figures"], evals, 60.0)


def test_the_card_names_every_training_option_that_departs_from_the_plain_recipe() -> None:
    plain = _committed_card(gap_reach=1.0, shared_gap_share=0.0, state_jitter_rad=0.0)
    assert "uniformly between the `none` preset and\n  `large`;" in plain
    assert "random offset" not in plain and "one severity" not in plain
    varied = _committed_card(gap_reach=1.3, shared_gap_share=0.3, state_jitter_rad=0.005)
    assert "1.3 times as far as `large` (30% of the episodes: one severity" in varied
    assert "random offset (std\n  5 mrad a joint)" in varied
    assert "make reference" in plain  # the one command from a clean checkout


def test_a_cached_segmenter_stage_counts_only_for_the_same_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grasprt.export.reference import train_segmenter

    meta = {"seed": 0, "quick": False, "recipe": train_segmenter.recipe(False)}
    (tmp_path / "segmenter.json").write_text(json.dumps({"meta": meta, "figures": {}}))
    assert _stage_done(tmp_path / "segmenter.json", meta) is not None  # tuples read back
    monkeypatch.setattr(train_segmenter, "POS_WEIGHT", train_segmenter.POS_WEIGHT + 1.0)
    changed = {**meta, "recipe": train_segmenter.recipe(False)}
    assert _stage_done(tmp_path / "segmenter.json", changed) is None


def test_a_cached_dagger_stage_counts_only_for_the_same_expert(tmp_path: Path) -> None:
    cfg = DaggerConfig.quick(0)
    meta = {**asdict(cfg), "expert": asdict(ExpertConfig())}
    torch.save(Controller().state_dict(), tmp_path / "controller.pt")
    (tmp_path / "dagger.json").write_text(json.dumps({"meta": meta, "config": {}}))
    assert _stage_done(tmp_path / "dagger.json", meta) is not None
    changed = {**meta, "expert": asdict(ExpertConfig(close_x=0.004))}
    assert _stage_done(tmp_path / "dagger.json", changed) is None
    # The build's own key is this one: the committed expert's settings included.
    said: list[str] = []
    _, _, done = build_controller(tmp_path, cfg, tmp_path / "scaffold", said.append)
    assert said == [] and done["meta"] == json.loads(json.dumps(meta))
