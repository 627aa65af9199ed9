"""The one-command recipe, end to end at tiny sizes: train, select, export, evaluate, card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grasprt.bundle import load_bundle
from grasprt.export.reference.build import EVALS, EXPERT_EVALS, main


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
    stamp = (work / "controller.pt").stat().st_mtime_ns
    again = CliRunner().invoke(main, ["--quick", "--out", str(out), "--work", str(work)])
    assert again.exit_code == 0, again.output
    assert (work / "controller.pt").stat().st_mtime_ns == stamp
