"""Reduced precision and its gate: real quantisation (onnxruntime.quantization), real
simulator frames, real sessions; a reduced model is used only when its masks match
fp32's (IoU >= 0.98 over frames where fp32 sees the target)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from bundle_factory import (
    color_segmenter,
    const,
    image_input,
    make_model,
    mask_value,
    ramp_controller,
    write_bundle,
)
from onnx import TensorProto, helper

from grasprt.bundle import load_bundle
from grasprt.config import InferenceSettings
from grasprt.drivers.sim.views import held_out_views as sim_frames
from grasprt.errors import ConfigError
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.quantize import (
    IOU_GATE,
    judge,
    mask_iou,
    quantize_int8,
    reduced_segmenter,
)


def conv_yellow_segmenter() -> onnx.ModelProto:
    """A one-convolution segmenter: each 4x4 block's (R + G - 2B), scaled, through a
    sigmoid; yellow blocks score high. Small enough to quantise in a second."""
    gain = 10.0 / (16 * 255.0)
    w = np.zeros((1, 3, 4, 4), dtype=np.float32)
    w[0, 0], w[0, 1], w[0, 2] = gain, gain, -2 * gain
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w", "b"], ["logit"], strides=[4, 4]),
        helper.make_node("Sigmoid", ["logit"], ["mask"]),
    ]
    return make_model(
        "segmenter", nodes, [image_input()], [mask_value()], [const("w", w), const("b", [-3.0])]
    )


@pytest.fixture(scope="module")
def conv_bundle(tmp_path_factory: pytest.TempPathFactory):
    root = write_bundle(
        tmp_path_factory.mktemp("q") / "b", conv_yellow_segmenter(), ramp_controller()
    )
    return load_bundle(root)


def test_mask_iou_basics() -> None:
    a = np.zeros((2, 10, 10), dtype=bool)
    a[0, :5] = True
    assert mask_iou(a, a) == (1.0, 1.0)
    b = np.zeros_like(a)
    b[0, 5:] = True
    assert mask_iou(a, b)[0] == 0.0
    half = a.copy()
    half[0, :5, 5:] = False
    pooled, worst = mask_iou(a, half)
    assert pooled == pytest.approx(0.5) and worst == pytest.approx(0.5)
    empty = np.zeros_like(a)
    assert mask_iou(empty, empty) == (1.0, 1.0)


def test_gate_admits_the_same_model_and_refuses_a_different_one(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", color_segmenter(), ramp_controller())
    b = load_bundle(root)
    frames = sim_frames(b, range(40, 52))
    same = judge("x", "same", b.segmenter_bytes, b.segmenter_bytes, frames, b.mask_threshold)
    assert same.passed and same.iou == 1.0 and same.reference_pixels > 0
    # A stricter colour test: smaller masks, so the IoU drops below the gate.
    strict = color_segmenter(min_chroma=140.0).SerializeToString()
    other = judge("x", "strict", b.segmenter_bytes, strict, frames, b.mask_threshold)
    assert other.iou < IOU_GATE and not other.passed
    assert "not admitted" in other.verdict


def test_gate_cannot_admit_when_fp32_sees_nothing(tmp_path: Path) -> None:
    blind = color_segmenter(min_chroma=300.0)  # no pixel is ever this saturated
    root = write_bundle(tmp_path / "b", blind, ramp_controller())
    b = load_bundle(root)
    frames = sim_frames(b, range(40, 44))
    r = judge("x", "same", b.segmenter_bytes, b.segmenter_bytes, frames, b.mask_threshold)
    assert r.iou == 1.0 and r.reference_pixels == 0
    assert not r.passed and "proves nothing" in r.verdict


def test_int8_qdq_of_a_conv_segmenter_passes_the_gate(conv_bundle) -> None:
    b = conv_bundle
    calib = sim_frames(b, range(100, 108))
    q = quantize_int8(b.segmenter_bytes, calib, reduce_range=True)
    ops = {n.op_type for n in onnx.load_from_string(q).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    held_out = sim_frames(b, range(200, 212))
    r = judge("int8", "t", b.segmenter_bytes, q, held_out, b.mask_threshold)
    assert r.reference_pixels > 0
    assert r.passed, r.verdict


def test_pipeline_with_int8_runs_the_quantised_segmenter(conv_bundle) -> None:
    p = Pipeline(
        conv_bundle, InferenceSettings(intra_op_threads=1, precision="int8"), views=sim_frames
    )
    ops = {n.op_type for n in onnx.load_from_string(p.segmenter_model).graph.node}
    assert "QuantizeLinear" in ops
    frame = sim_frames(conv_bundle, [300])[0]
    prob = p.segment(frame)
    assert prob.shape == (1, 1, 100, 100) and np.all((prob >= 0) & (prob <= 1))


@pytest.mark.slow
def test_int8_refused_when_the_gate_cannot_judge(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", color_segmenter(min_chroma=300.0), ramp_controller())
    with pytest.raises(ConfigError, match="proves nothing"):
        reduced_segmenter(load_bundle(root), "int8", views=sim_frames)


def test_fp16_on_cpu_is_refused_with_the_reason(conv_bundle) -> None:
    with pytest.raises(ConfigError, match="fp16") as e:
        reduced_segmenter(conv_bundle, "fp16", InferenceSettings())
    assert "\n" not in str(e.value)


def test_int8_without_held_out_views_is_refused_in_one_line(conv_bundle) -> None:
    # A caller with no simulator frames to judge by gets a refusal, never an unjudged
    # int8 segmenter.
    with pytest.raises(ConfigError, match="no held-out frames") as e:
        Pipeline(conv_bundle, InferenceSettings(intra_op_threads=1, precision="int8"))
    assert "\n" not in str(e.value)


def test_unknown_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="precision"):
        InferenceSettings(precision="int4")
