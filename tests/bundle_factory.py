"""Tiny model bundles for tests, built with onnx.helper only (no torch).

Every model here is a real ONNX graph that ONNX Runtime runs; each carries the
contract's metadata, names, dtypes and shapes unless a test breaks them on purpose.

    from bundle_factory import write_bundle, color_segmenter, constant_controller

    root = write_bundle(tmp_path / "b", color_segmenter(), constant_controller([0.1] * 8))
    bundle = load_bundle(root)

API (kept stable for the loop's tests):

- ``write_bundle(dir, segmenter, controller, **manifest_overrides) -> Path``: writes
  segmenter.onnx, controller.onnx and a valid bundle.json with their sha256s; each
  keyword replaces one top-level manifest field, ``MISSING`` removes it.
- ``color_segmenter()``: yellow pixels (hue 60 +- ~18 degrees, R and G at least
  ``min_chroma`` above B) averaged over 4x4 blocks: the fraction of each mask pixel that
  is yellow, which thresholds to a sensible target mask in the simulator.
- ``constant_controller(action)``: always ``action`` (8 numbers).
- ``nan_controller(index=0)``: NaN at ``action[index]``, zeros elsewhere.
- ``ramp_controller(target=None, gain=1.0)``: joints ``tanh(gain * (target - q))``
  (a proportional move towards ``target``, default all zeros); gripper ``2*max(mask)-1``,
  i.e. close (> 0) as soon as any mask pixel is on, open when the mask is empty.
- ``make_model(role, nodes, inputs, outputs, initializers)``: any graph, with metadata.
- ``rehash(dir)``: rewrite bundle.json's sha256s after a test has edited a model file.
- ``SIM_CAMERA``, ``SAWYER_JOINTS``, ``default_manifest()``: the valid defaults.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from grasprt.profiles import SAWYER

OPSET = 17
IR_VERSION = 9  # opset 17's IR; every onnxruntime since 1.15 reads it
SAWYER_JOINTS = list(SAWYER.joint_names)
_F = 200.0 / math.tan(math.radians(40.0))
SIM_CAMERA = {"width": 400, "height": 400, "fx": _F, "fy": _F, "cx": 199.5, "cy": 199.5}
MISSING: Any = object()  # pass as a manifest override to remove that field

Dim = int | str


def tensor(name: str, dtype: int, shape: Sequence[Dim]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(shape))


def image_input(batch: Dim = 1) -> onnx.ValueInfoProto:
    return tensor("image", TensorProto.UINT8, [batch, 400, 400, 3])


def mask_value(batch: Dim = 1) -> onnx.ValueInfoProto:
    return tensor("mask", TensorProto.FLOAT, [batch, 1, 100, 100])


def state_input(batch: Dim = 1) -> onnx.ValueInfoProto:
    return tensor("state", TensorProto.FLOAT, [batch, 8])


def action_output(batch: Dim = 1) -> onnx.ValueInfoProto:
    return tensor("action", TensorProto.FLOAT, [batch, 8])


def const(name: str, value: Any, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def make_model(
    role: str,
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    metadata: dict[str, str] | None = None,
    check: bool = True,
) -> onnx.ModelProto:
    """A model (checked unless ``check`` is False, for tests of the checker itself);
    ``metadata`` defaults to the contract's for ``role``."""
    graph = helper.make_graph(
        list(nodes), f"test_{role}", list(inputs), list(outputs), list(initializers)
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bundle_factory"
    )
    model.ir_version = IR_VERSION
    if metadata is None:
        metadata = {"grasprt.interface": "1", "grasprt.role": role}
    helper.set_model_props(model, metadata)
    if check:
        onnx.checker.check_model(model)
    return model


def color_segmenter(
    min_chroma: float = 40.0, batch: Dim = 1, hue_tolerance: float = 0.3
) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Cast", ["image"], ["rgb"], to=TensorProto.FLOAT),
        helper.make_node("Split", ["rgb"], ["r", "g", "b"], axis=3),
        helper.make_node("Min", ["r", "g"], ["rg_min"]),
        helper.make_node("Max", ["r", "g"], ["rg_max"]),
        helper.make_node("Sub", ["rg_min", "b"], ["above_blue"]),
        helper.make_node("Sub", ["rg_max", "b"], ["chroma"]),
        helper.make_node("Sub", ["rg_max", "rg_min"], ["r_g_gap"]),
        helper.make_node("Greater", ["above_blue", "min_chroma"], ["saturated"]),
        # |R - G| small against the chroma keeps the hue near 60 degrees: yellow, not orange.
        helper.make_node("Mul", ["chroma", "hue_tolerance"], ["gap_allowed"]),
        helper.make_node("Less", ["r_g_gap", "gap_allowed"], ["yellow_hue"]),
        helper.make_node("And", ["saturated", "yellow_hue"], ["yellow_bool"]),
        helper.make_node("Cast", ["yellow_bool"], ["yellow_nhwc"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["yellow_nhwc"], ["yellow"], perm=[0, 3, 1, 2]),
        helper.make_node("AveragePool", ["yellow"], ["mask"], kernel_shape=[4, 4], strides=[4, 4]),
    ]
    # A wider hue tolerance (1.0) takes orange for yellow too: the sim's orange clutter.
    consts = [const("min_chroma", min_chroma), const("hue_tolerance", hue_tolerance)]
    return make_model("segmenter", nodes, [image_input(batch)], [mask_value(batch)], consts)


def constant_controller(action: Sequence[float]) -> onnx.ModelProto:
    if len(action) != 8:
        raise ValueError("a controller's action has 8 numbers")
    nodes = [helper.make_node("Identity", ["value"], ["action"])]
    value = const("value", [list(action)])
    return make_model(
        "controller", nodes, [mask_value(), state_input()], [action_output()], [value]
    )


def nan_controller(index: int = 0) -> onnx.ModelProto:
    action = [0.0] * 8
    action[index] = float("nan")
    return constant_controller(action)


def ramp_controller(target: Sequence[float] | None = None, gain: float = 1.0) -> onnx.ModelProto:
    target = [0.0] * 7 if target is None else list(target)
    if len(target) != 7:
        raise ValueError("ramp_controller's target has 7 joint angles")
    nodes = [
        helper.make_node("Slice", ["state", "starts", "ends", "axes"], ["q"]),
        helper.make_node("Sub", ["target", "q"], ["error"]),
        helper.make_node("Mul", ["error", "gain"], ["scaled"]),
        helper.make_node("Tanh", ["scaled"], ["joints"]),
        helper.make_node("ReduceMax", ["mask"], ["mask_max"], keepdims=0),
        helper.make_node("Mul", ["mask_max", "two"], ["twice"]),
        helper.make_node("Sub", ["twice", "one"], ["grip_scalar"]),
        helper.make_node("Reshape", ["grip_scalar", "grip_shape"], ["grip"]),
        helper.make_node("Concat", ["joints", "grip"], ["action"], axis=1),
    ]
    consts = [
        const("starts", [0], np.int64),
        const("ends", [7], np.int64),
        const("axes", [1], np.int64),
        const("target", [target]),
        const("gain", gain),
        const("two", 2.0),
        const("one", 1.0),
        const("grip_shape", [1, 1], np.int64),
    ]
    return make_model("controller", nodes, [mask_value(), state_input()], [action_output()], consts)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_manifest(segmenter_sha: str, controller_sha: str) -> dict[str, Any]:
    return {
        "interface": 1,
        "robot": "sawyer",
        "joints": list(SAWYER_JOINTS),
        "rate_hz": 10.0,
        "action_scale": [0.05] * 7,
        "mask_threshold": 0.5,
        "camera": dict(SIM_CAMERA),
        "segmenter": {"path": "segmenter.onnx", "sha256": segmenter_sha},
        "controller": {"path": "controller.onnx", "sha256": controller_sha},
        "provenance": {"note": "test bundle from tests/bundle_factory.py"},
    }


def write_bundle(
    dir: str | Path,
    segmenter: onnx.ModelProto,
    controller: onnx.ModelProto,
    /,
    **manifest_overrides: Any,
) -> Path:
    """Write a bundle; overrides may also name 'segmenter' and 'controller' (the
    manifest entries), hence the positional-only models."""
    root = Path(dir)
    root.mkdir(parents=True, exist_ok=True)
    seg, ctrl = segmenter.SerializeToString(), controller.SerializeToString()
    (root / "segmenter.onnx").write_bytes(seg)
    (root / "controller.onnx").write_bytes(ctrl)
    manifest = default_manifest(sha256(seg), sha256(ctrl))
    for key, value in manifest_overrides.items():
        if value is MISSING:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (root / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return root


def rehash(dir: str | Path) -> Path:
    """Make bundle.json's sha256s match the model files again (after a test edited one)."""
    root = Path(dir)
    manifest = json.loads((root / "bundle.json").read_text(encoding="utf-8"))
    for role in ("segmenter", "controller"):
        manifest[role]["sha256"] = sha256((root / manifest[role]["path"]).read_bytes())
    (root / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return root
