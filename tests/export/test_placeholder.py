"""The committed placeholder bundle is what the placeholder builder makes today."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("torch")

from grasprt.bundle import load_bundle
from grasprt.export.placeholder import build_placeholder
from grasprt.profiles import SAWYER

COMMITTED = Path(__file__).resolve().parents[2] / "models" / "placeholder"


def outputs(bundle_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    bundle = load_bundle(bundle_dir)
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (2, 400, 400, 3), dtype=np.uint8)
    states = np.tile(np.append(SAWYER.neutral, 0.0), (2, 1)).astype(np.float32)
    seg = ort.InferenceSession(bundle.segmenter_bytes, providers=["CPUExecutionProvider"])
    ctrl = ort.InferenceSession(bundle.controller_bytes, providers=["CPUExecutionProvider"])
    (mask,) = seg.run(None, {"image": images})
    binary = (mask > bundle.mask_threshold).astype(np.float32)
    (action,) = ctrl.run(None, {"mask": binary, "state": states})
    return mask, action


@pytest.mark.slow
def test_placeholder_rebuilds_to_the_committed_bundle(tmp_path: Path) -> None:
    result = build_placeholder(tmp_path / "placeholder")
    print(result.summary())
    prov = result.bundle.provenance
    assert prov["placeholder"] is True and prov["seed"] == 0
    assert prov["note"] == "random weights: runs the loop, grasps nothing"
    # Compared by what the graphs compute, not by their bytes, which may change with
    # the exporter's version while the networks stay the same.
    mask_new, action_new = outputs(tmp_path / "placeholder")
    mask_old, action_old = outputs(COMMITTED)
    np.testing.assert_allclose(mask_new, mask_old, atol=1e-6, rtol=0)
    np.testing.assert_allclose(action_new, action_old, atol=1e-6, rtol=0)
    # Small actions: the placeholder must wander, not lunge.
    assert np.abs(action_new[:, :7]).max() < 0.25
