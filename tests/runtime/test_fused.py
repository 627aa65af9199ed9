"""The fused graph (segmenter -> threshold -> controller in one ONNX model) against the
two-model path: same masks, same probabilities, same actions, bit for bit, in real
ONNX Runtime sessions; and the same commands when the whole loop runs on it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from bundle_factory import color_segmenter, make_model, ramp_controller, write_bundle
from onnx import TensorProto, helper

from grasprt.bundle import load_bundle
from grasprt.config import InferenceSettings, RunConfig
from grasprt.drivers.sim.config import SimConfig, gap_preset
from grasprt.drivers.sim.kind import sim_drivers
from grasprt.drivers.sim.views import held_out_views as sim_frames
from grasprt.errors import BundleError
from grasprt.profiles import SAWYER
from grasprt.runtime.fused import FUSED_OUTPUTS, fuse
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.runner import Run

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = REPO / "models" / "placeholder"
TWO_MODEL_STAGES = ("segmenter", "threshold", "controller")


def _both(bundle_dir: Path) -> tuple[Pipeline, Pipeline]:
    b = load_bundle(bundle_dir)
    one = InferenceSettings(intra_op_threads=1)
    return Pipeline(b, replace(one, fused=False)), Pipeline(b, replace(one, fused=True))


def _agree(two: Pipeline, fused: Pipeline, image: np.ndarray, q: np.ndarray, g: float) -> None:
    two.segment(image)
    mask_two = two.threshold().copy()
    action_two = two.control(q, g).copy()
    runs = fused.fused_runs
    fused.set_state(q, g)
    fused.segment(image)
    fused.threshold()
    action_fused = fused.control(q, g).copy()
    assert fused.fused_runs == runs + 1  # one fused run did it all
    np.testing.assert_array_equal(fused.prob, two.prob)
    np.testing.assert_array_equal(fused.mask, mask_two)
    np.testing.assert_array_equal(action_fused, action_two)


@pytest.mark.skipif(not (PLACEHOLDER / "bundle.json").exists(), reason="no placeholder bundle")
def test_fused_paper_network_equals_two_model_path() -> None:
    two, fused = _both(PLACEHOLDER)
    assert fused.fused is not None and two.fused is None
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (400, 400, 3), dtype=np.uint8) for _ in range(3)]
    areas = []
    for i, image in enumerate(images):
        _agree(two, fused, image, rng.uniform(-1, 1, 7).astype(np.float32), float(i % 2))
        areas.append(float(two.mask.sum()))
    # The comparison covered masks with pixels on, not only empty ones.
    assert max(areas) > 0


def test_fused_factory_models_on_sim_frames(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", color_segmenter(), ramp_controller(list(SAWYER.neutral)))
    two, fused = _both(root)
    frames = sim_frames(load_bundle(root), [11, 12, 13])
    on = 0
    for f in frames:
        _agree(two, fused, f, np.asarray(SAWYER.neutral, dtype=np.float32), 0.0)
        on += int(two.mask.sum() > 0)
    assert on >= 1  # the yellow sphere was in view at least once


def test_fused_model_is_valid_onnx_with_the_loop_outputs(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", color_segmenter(), ramp_controller())
    b = load_bundle(root)
    model = fuse(b.segmenter_bytes, b.controller_bytes, b.mask_threshold)
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == list(FUSED_OUTPUTS)
    assert [i.name for i in model.graph.input] == ["image", "state"]
    ops = [n.op_type for n in model.graph.node]
    assert "Greater" in ops and "Cast" in ops


def test_fused_with_given_mask_uses_the_controller_alone(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", color_segmenter(), ramp_controller())
    two, fused = _both(root)
    truth = np.zeros((100, 100), dtype=np.float32)
    truth[40:60, 40:60] = 1.0
    q = np.full(7, 0.2, dtype=np.float32)
    two.set_mask(truth)
    a_two = two.control(q, 0.0).copy()
    fused.set_state(q, 0.0)
    fused.set_mask(truth)
    a_fused = fused.control(q, 0.0).copy()
    assert fused.fused_runs == 0
    np.testing.assert_array_equal(a_fused, a_two)
    assert a_two[7] > 0  # the ramp controller closes when any mask pixel is on


def test_fuse_refuses_a_graph_with_subgraphs(tmp_path: Path) -> None:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["m0"], ["b_out"])],
        "branch",
        [],
        [helper.make_tensor_value_info("b_out", TensorProto.FLOAT, [1, 1, 100, 100])],
    )
    seg = color_segmenter()
    nodes = list(seg.graph.node)
    nodes[-1].output[0] = "m0"
    nodes.append(helper.make_node("Constant", [], ["cond"], value_int=1))
    nodes.append(helper.make_node("Cast", ["cond"], ["cond_b"], to=TensorProto.BOOL))
    nodes.append(
        helper.make_node("If", ["cond_b"], ["mask"], then_branch=branch, else_branch=branch)
    )
    odd = make_model(
        "segmenter",
        nodes,
        list(seg.graph.input),
        list(seg.graph.output),
        list(seg.graph.initializer),
    )
    with pytest.raises(BundleError, match="subgraph"):
        fuse(odd, ramp_controller(), 0.5)


def _commands(tmp_path: Path, fused: bool) -> list[np.ndarray]:
    root = write_bundle(
        tmp_path / "bundle", color_segmenter(), ramp_controller(list(SAWYER.neutral))
    )
    cfg = RunConfig(
        robot="sim",
        bundle=str(root),
        clock="sim",
        max_steps=25,
        inference=InferenceSettings(intra_op_threads=1, fused=fused),
    )
    drivers = sim_drivers(cfg, load_bundle(root), SimConfig(gap=gap_preset("none")))
    sent: list[np.ndarray] = []
    robot = drivers.robot
    original = robot.command

    def spy(cmd) -> None:  # the real sim robot, with each command noted on the way
        sent.append(np.array(cmd.q))
        original(cmd)

    robot.command = spy
    run = Run(cfg, drivers=drivers)
    pipeline = run.policy.pipeline
    assert (pipeline.fused is not None) == fused
    # The stage is named for what ran: one fused graph, or the three steps apart.
    assert run.policy.stages == (("segmenter+controller",) if fused else TWO_MODEL_STAGES)
    report = run.execute()
    assert report.fault is None
    assert pipeline.fused_runs == (len(sent) if fused else 0)
    return sent


def test_loop_on_fused_graph_commands_exactly_as_two_models(tmp_path: Path) -> None:
    two = _commands(tmp_path / "two", fused=False)
    one = _commands(tmp_path / "one", fused=True)
    assert len(two) == len(one) > 0
    for a, b in zip(two, one, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fused_pipeline_segment_alone_is_the_segmenter(tmp_path: Path) -> None:
    # Without a staged state (a caller that wants a mask only), segment() runs the
    # segmenter session: its probabilities are there at once.
    root = write_bundle(tmp_path / "b", color_segmenter(), ramp_controller())
    two, fused = _both(root)
    frame = sim_frames(load_bundle(root), [14])[0]
    np.testing.assert_array_equal(fused.segment(frame), two.segment(frame))
    np.testing.assert_array_equal(fused.threshold(), two.threshold())
    assert fused.fused_runs == 0
