"""Exports are proven against PyTorch with ONNX Runtime, or refused without a trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from bundle_factory import color_segmenter, constant_controller, write_bundle

torch = pytest.importorskip("torch")

from grasprt.bundle import load_bundle  # noqa: E402
from grasprt.errors import ConfigError  # noqa: E402
from grasprt.export.defaults import default_camera, state_normalisation  # noqa: E402
from grasprt.export.models import Controller, ControllerGraph, Segmenter, SegmenterGraph  # noqa: E402
from grasprt.export.onnx_export import ExportResult, export_bundle  # noqa: E402
from grasprt.export.parity import RANGE_SLACK, ParityError  # noqa: E402
from grasprt.profiles import SAWYER  # noqa: E402

SMALL = (4, 4, 4, 4)  # the paper's layers at a fraction of the cost: CI has 2 cores


def nets(seed: int) -> tuple[Segmenter, Controller]:
    torch.manual_seed(seed)
    return Segmenter(SMALL).eval(), Controller().eval()


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ExportResult, Segmenter, Controller]:
    out = tmp_path_factory.mktemp("export") / "bundle"
    # An older bundle is there already: --force replaces it as a whole.
    write_bundle(out, color_segmenter(), constant_controller([0.0] * 8))
    (out / "stale.txt").write_text("from the old bundle")
    seg, ctrl = nets(seed=3)
    result = export_bundle(seg, ctrl, out, force=True, provenance={"dataset": "unit test"})
    print(result.summary())
    return result, seg, ctrl


def test_export_proves_parity(exported: tuple[ExportResult, Segmenter, Controller]) -> None:
    result, _, _ = exported
    p = result.parity
    assert p.mask_max_abs_err <= 1e-4 and p.action_max_abs_err <= 1e-4
    assert p.segmenter_cases >= 7 and p.controller_cases >= 9
    prov = result.bundle.provenance
    assert prov["parity"] == p.as_dict()
    assert prov["dataset"] == "unit test"
    assert prov["segmenter"]["widths"] == list(SMALL)
    assert prov["torch"] == torch.__version__ and prov["onnxruntime"] == ort.__version__


def test_export_writes_a_valid_bundle(exported: tuple[ExportResult, Segmenter, Controller]) -> None:
    result, _, _ = exported
    bundle = load_bundle(result.out)
    assert sorted(p.name for p in result.out.iterdir()) == [
        "bundle.json",
        "controller.onnx",
        "segmenter.onnx",
    ]
    assert bundle.joints == SAWYER.joint_names and bundle.robot == "sawyer"
    np.testing.assert_allclose(bundle.action_scale, 0.05)
    assert bundle.rate_hz == 10.0 and bundle.mask_threshold == 0.5
    assert bundle.camera == default_camera()
    offset, scale = state_normalisation(SAWYER)
    norm = bundle.provenance["controller"]["state_normalisation"]
    np.testing.assert_allclose(norm["offset"], offset, atol=1e-6)
    np.testing.assert_allclose(norm["scale"], scale, atol=1e-6)
    # Nothing of the export's temporary directories is left next to it.
    assert [p.name for p in result.out.parent.iterdir()] == ["bundle"]


def test_exported_batch_is_symbolic(exported: tuple[ExportResult, Segmenter, Controller]) -> None:
    result, seg, ctrl = exported
    bundle = result.bundle
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (3, 400, 400, 3), dtype=np.uint8)
    masks = (rng.random((3, 1, 100, 100)) > 0.8).astype(np.float32)
    states = rng.uniform(-2, 2, (3, 8)).astype(np.float32)
    seg_sess = ort.InferenceSession(bundle.segmenter_bytes, providers=["CPUExecutionProvider"])
    ctrl_sess = ort.InferenceSession(bundle.controller_bytes, providers=["CPUExecutionProvider"])
    (mask,) = seg_sess.run(None, {"image": images})
    (action,) = ctrl_sess.run(None, {"mask": masks, "state": states})
    with torch.no_grad():
        want_mask = SegmenterGraph(seg)(torch.from_numpy(images)).numpy()
        graph = ControllerGraph(ctrl, *state_normalisation(SAWYER))
        want_action = graph(torch.from_numpy(masks), torch.from_numpy(states)).numpy()
    assert mask.shape == (3, 1, 100, 100) and action.shape == (3, 8)
    np.testing.assert_allclose(mask, want_mask, atol=1e-4, rtol=0)
    np.testing.assert_allclose(action, want_action, atol=1e-4, rtol=0)


class ExportDiffers(Segmenter):
    """A segmenter whose exported graph is not what PyTorch runs (as a buggy op might be)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        if torch.compiler.is_exporting():
            return logits + 0.01
        return logits


def test_tampered_export_fails_parity_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    old = write_bundle(out, color_segmenter(), constant_controller([0.0] * 8))
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    torch.manual_seed(4)
    seg = ExportDiffers(SMALL).eval()
    with pytest.raises(ParityError) as err:
        export_bundle(seg, Controller().eval(), out, force=True)
    message = str(err.value)
    print(message)
    assert "mask" in message and "refused" in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def saturated_controller(bias: float) -> Controller:
    """A controller whose every output is tanh(bias), whatever its inputs."""
    ctrl = Controller().eval()
    with torch.no_grad():
        ctrl.fc2.weight.zero_()
        ctrl.fc2.bias.fill_(bias)
    return ctrl


def test_saturated_controller_exports_despite_onnx_runtime_tanh_rounding(tmp_path: Path) -> None:
    # Near 9, ONNX Runtime's CPU Tanh rounds past 1 (1.0000002 on 1.32): a trained
    # controller that saturates must not be mistaken for a broken one.
    ctrl = saturated_controller(8.9862)
    seg, _ = nets(seed=0)
    result = export_bundle(seg, ctrl, tmp_path / "b")
    sess = ort.InferenceSession(result.bundle.controller_bytes, providers=["CPUExecutionProvider"])
    (action,) = sess.run(
        None,
        {"mask": np.zeros((1, 1, 100, 100), np.float32), "state": np.zeros((1, 8), np.float32)},
    )
    print("saturated action", action.max(), "parity", result.parity.action_max_abs_err)
    assert np.all(np.abs(action) <= 1.0 + RANGE_SLACK) and action.min() > 0.999
    assert result.parity.action_max_abs_err <= 1e-4


class BeyondRange(Controller):
    """A controller whose outputs leave [-1, 1] (a graph without its final tanh)."""

    def forward(self, mask: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return 1.5 * super().forward(mask, state)


def test_controller_beyond_its_range_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(1)
    ctrl = BeyondRange().eval()
    with torch.no_grad():
        ctrl.fc2.bias.fill_(20.0)
    seg, _ = nets(seed=0)
    with pytest.raises(ParityError) as err:
        export_bundle(seg, ctrl, tmp_path / "b")
    message = str(err.value)
    print(message)
    assert "action leaves [-1, 1]" in message and "\n" not in message
    assert not (tmp_path / "b").exists()


def test_existing_directory_needs_force(tmp_path: Path) -> None:
    out = write_bundle(tmp_path / "b", color_segmenter(), constant_controller([0.0] * 8))
    seg, ctrl = nets(seed=0)
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        export_bundle(seg, ctrl, out)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not a model bundle; refusing"):
        export_bundle(seg, ctrl, notes, force=True)
    assert (notes / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"robot": "ur5"}, "unknown robot profile 'ur5'"),
        ({"rate_hz": 0.0}, "rate"),
        ({"mask_threshold": 1.0}, "mask threshold"),
        ({"action_scale": [0.05] * 6}, "action scale"),
        ({"action_scale": -0.1}, "action scale"),
    ],
)
def test_bad_export_arguments(tmp_path: Path, kwargs: dict, words: str) -> None:
    seg, ctrl = nets(seed=0)
    with pytest.raises(ConfigError, match=words):
        export_bundle(seg, ctrl, tmp_path / "b", **kwargs)
    assert not (tmp_path / "b").exists()
