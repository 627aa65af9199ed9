"""The MuJoCo stage's segmenter step: fine-tuning on finger composites, MuJoCo's frames."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from grasprt.export.reference.mujoco_stage import bundle_segmenter
from grasprt.export.reference.segmenter_finetune import (
    FinetuneConfig,
    finetune,
    load,
    mujoco_frames,
    save,
)

REFERENCE = Path(__file__).resolve().parents[3] / "models" / "reference"


def test_a_fine_tune_moves_the_weights_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = bundle_segmenter(REFERENCE)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    losses = finetune(net, replace(FinetuneConfig.quick(), steps=4))
    assert len(losses) == 4 and all(np.isfinite(losses))
    moved = max(float((net.state_dict()[k] - v).abs().max()) for k, v in start.items())
    assert moved > 0.0
    save(net, {"config": {"steps": 4}}, tmp_path / "seg.pt")
    again, record = load(tmp_path / "seg.pt")
    assert record == {"config": {"steps": 4}}
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net.eval()(image), again(image))


@pytest.mark.mujoco
def test_mujocos_frames_show_the_target_with_its_visible_mask() -> None:
    frames = list(mujoco_frames(6, seed=3, bundle=str(REFERENCE)))
    assert len(frames) == 6
    for image, truth, group in frames:
        assert image.shape == (400, 400, 3) and image.dtype == np.uint8
        assert truth.shape == (100, 100) and truth.sum() >= 1 and group == "mujoco"
        # The masked cells are the yellow sphere's: redder and greener than blue.
        cells = image.reshape(100, 4, 100, 4, 3).transpose(0, 2, 1, 3, 4)[truth > 0]
        rgb = cells.reshape(-1, 3).astype(float).mean(axis=0)
        assert rgb[0] > rgb[2] + 30 and rgb[1] > rgb[2] + 30
