"""The bundle loader holds every bundle to INTERFACE.md, and names what is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from bundle_factory import (
    MISSING,
    SIM_CAMERA,
    action_output,
    color_segmenter,
    const,
    constant_controller,
    image_input,
    make_model,
    mask_value,
    ramp_controller,
    rehash,
    state_input,
    tensor,
    write_bundle,
)
from onnx import TensorProto, helper
from onnx.external_data_helper import set_external_data

from grasprt.bundle import MODEL_SIZE, check_against_profile, describe, load_bundle
from grasprt.errors import BundleError, GrasprtError
from grasprt.profiles import SAWYER

PLACEHOLDER = Path(__file__).resolve().parents[2] / "models" / "placeholder"


def stub(
    role: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto], **kw: Any
) -> onnx.ModelProto:
    """A graph whose outputs are constants: enough to test what the loader checks."""
    nodes, inits = [], []
    for out in outputs:
        nodes.append(helper.make_node("Identity", [f"{out.name}_value"], [out.name]))
        inits.append(const(f"{out.name}_value", 0.0))
    return make_model(role, nodes, inputs, outputs, inits, **kw)


def good(tmp: Path, **overrides: Any) -> Path:
    return write_bundle(tmp / "b", color_segmenter(), constant_controller([0.0] * 8), **overrides)


def with_models(seg: onnx.ModelProto | None = None, ctrl: onnx.ModelProto | None = None):
    def build(tmp: Path) -> Path:
        return write_bundle(
            tmp / "b", seg or color_segmenter(), ctrl or constant_controller([0.0] * 8)
        )

    return build


def manifest(**overrides: Any) -> Callable[[Path], Path]:
    return lambda tmp: good(tmp, **overrides)


def camera(**changes: Any) -> Callable[[Path], Path]:
    cam = dict(SIM_CAMERA)
    for k, v in changes.items():
        if v is MISSING:
            del cam[k]
        else:
            cam[k] = v
    return manifest(camera=cam)


def raw_manifest(data: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        root = good(tmp)
        (root / "bundle.json").write_bytes(data)
        return root

    return build


def file_replaced(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        root = good(tmp)
        (root / name).write_bytes(data)
        return rehash(root)

    return build


def with_metadata(role: str, metadata: dict[str, str]) -> onnx.ModelProto:
    model = color_segmenter() if role == "segmenter" else constant_controller([0.0] * 8)
    del model.metadata_props[:]
    helper.set_model_props(model, metadata)
    return model


def external_weights(tmp: Path) -> Path:
    model = constant_controller([0.0] * 8)
    weight = model.graph.initializer[0]
    set_external_data(weight, location="weights.bin")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("float_data")
    weight.ClearField("raw_data")
    root = write_bundle(tmp / "b", color_segmenter(), model)
    (root / "weights.bin").write_bytes(np.zeros(8, np.float32).tobytes())
    return root


def escaping_symlink(tmp: Path) -> Path:
    root = good(tmp)
    outside = tmp / "elsewhere.onnx"
    outside.write_bytes((root / "segmenter.onnx").read_bytes())
    (root / "segmenter.onnx").unlink()
    (root / "segmenter.onnx").symlink_to(outside)
    return root


def unknown_op(tmp: Path) -> Path:
    model = color_segmenter()
    model.graph.node.append(helper.make_node("NoSuchOp", ["mask"], ["unused"]))
    root = write_bundle(tmp / "b", color_segmenter(), constant_controller([0.0] * 8))
    (root / "segmenter.onnx").write_bytes(model.SerializeToString())
    return rehash(root)


def plain_file(tmp: Path) -> Path:
    (tmp / "f").write_text("x")
    return tmp / "f"


def no_manifest(tmp: Path) -> Path:
    root = good(tmp)
    (root / "bundle.json").unlink()
    return root


F, U8, F64 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.DOUBLE
MASK_SHAPE = [1, 1, 100, 100]

# (id, builder, words the message must contain)
REFUSALS: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("no directory", lambda tmp: tmp / "nowhere", ("nowhere", "no such bundle directory")),
    ("a file, not a directory", plain_file, ("not a directory",)),
    ("no bundle.json", no_manifest, ("bundle.json", "missing")),
    (
        "not UTF-8",
        raw_manifest(b'{"interface": 1, "robot": "saw\xffyer"}'),
        ("bundle.json", "not UTF-8"),
    ),
    ("not JSON", raw_manifest(b'{"interface": 1,'), ("bundle.json", "not valid JSON")),
    ("JSON list", raw_manifest(b"[1, 2]"), ("bundle.json", "JSON object")),
    ("interface 2", manifest(interface=2), ("'interface'",)),
    ("interface as string", manifest(interface="1"), ("'interface'",)),
    ("interface true", manifest(interface=True), ("'interface'",)),
    ("robot empty", manifest(robot=""), ("'robot'",)),
    ("robot number", manifest(robot=3), ("'robot'",)),
    ("6 joints", manifest(joints=[f"j{i}" for i in range(6)]), ("'joints'", "7")),
    ("joint twice", manifest(joints=["a", "b", "c", "d", "e", "f", "a"]), ("'joints'", "'a'")),
    ("joint not a string", manifest(joints=["a", "b", "c", "d", "e", "f", 7]), ("'joints'",)),
    ("rate zero", manifest(rate_hz=0), ("'rate_hz'",)),
    ("rate negative", manifest(rate_hz=-10), ("'rate_hz'",)),
    ("rate NaN", manifest(rate_hz=float("nan")), ("'rate_hz'",)),
    ("rate infinite", manifest(rate_hz=float("inf")), ("'rate_hz'",)),
    ("rate string", manifest(rate_hz="10"), ("'rate_hz'",)),
    ("rate beyond float", manifest(rate_hz=10**400), ("'rate_hz'", "finite")),
    ("action_scale of 6", manifest(action_scale=[0.05] * 6), ("'action_scale'", "7")),
    ("action_scale zero", manifest(action_scale=[0.05] * 6 + [0.0]), ("'action_scale'",)),
    ("action_scale negative", manifest(action_scale=[-0.05] * 7), ("'action_scale'",)),
    ("action_scale NaN", manifest(action_scale=[0.05] * 6 + [float("nan")]), ("'action_scale'",)),
    ("action_scale string", manifest(action_scale=["0.05"] * 7), ("'action_scale'",)),
    ("action_scale scalar", manifest(action_scale=0.05), ("'action_scale'",)),
    ("threshold 0", manifest(mask_threshold=0), ("'mask_threshold'",)),
    ("threshold 1", manifest(mask_threshold=1.0), ("'mask_threshold'",)),
    ("threshold 1.5", manifest(mask_threshold=1.5), ("'mask_threshold'",)),
    ("threshold string", manifest(mask_threshold="0.5"), ("'mask_threshold'",)),
    ("camera not object", manifest(camera=[400, 400]), ("'camera'",)),
    ("camera 640 wide", camera(width=640), ("'camera.width'", "400")),
    ("camera height float", camera(height=400.0), ("'camera.height'",)),
    ("camera without fy", camera(fy=MISSING), ("'camera.fy'", "missing")),
    ("camera fx zero", camera(fx=0), ("'camera.fx'",)),
    ("camera cy string", camera(cy="199.5"), ("'camera.cy'",)),
    ("camera cx outside", camera(cx=900.0), ("'camera.cx'",)),
    ("segmenter not object", manifest(segmenter="segmenter.onnx"), ("'segmenter'",)),
    (
        "absolute path",
        manifest(segmenter={"path": "/etc/passwd", "sha256": "0" * 64}),
        ("'segmenter.path'", "relative"),
    ),
    (
        "path escapes",
        manifest(controller={"path": "../controller.onnx", "sha256": "0" * 64}),
        ("'controller.path'", "out of the bundle"),
    ),
    ("symlink escapes", escaping_symlink, ("'segmenter.path'", "out of the bundle")),
    (
        "sha256 not hex",
        manifest(controller={"path": "controller.onnx", "sha256": "xyz"}),
        ("'controller.sha256'",),
    ),
    ("no sha256", manifest(segmenter={"path": "segmenter.onnx"}), ("'segmenter.sha256'",)),
    ("provenance list", manifest(provenance=[1]), ("'provenance'",)),
    (
        "model file missing",
        manifest(segmenter={"path": "seg2.onnx", "sha256": "0" * 64}),
        ("seg2.onnx", "missing"),
    ),
    (
        "sha256 differs",
        manifest(controller={"path": "controller.onnx", "sha256": "ab" * 32}),
        ("controller.onnx", "sha256", "abababababab"),
    ),
    (
        "not ONNX",
        file_replaced("segmenter.onnx", b"\x00\x01 this is no protobuf \xff\xff"),
        ("segmenter.onnx",),
    ),
    ("fails checker", unknown_op, ("segmenter.onnx", "fails onnx.checker", "NoSuchOp")),
    ("external weights", external_weights, ("controller.onnx", "external data")),
    (
        "no interface metadata",
        with_models(seg=with_metadata("segmenter", {"grasprt.role": "segmenter"})),
        ("segmenter.onnx", "grasprt.interface", "missing"),
    ),
    (
        "interface metadata 2",
        with_models(
            ctrl=with_metadata(
                "controller", {"grasprt.interface": "2", "grasprt.role": "controller"}
            )
        ),
        ("controller.onnx", "grasprt.interface", "'2'"),
    ),
    (
        "no role metadata",
        with_models(ctrl=with_metadata("controller", {"grasprt.interface": "1"})),
        ("controller.onnx", "grasprt.role", "missing"),
    ),
    (
        "files swapped",
        with_models(seg=constant_controller([0.0] * 8), ctrl=color_segmenter()),
        ("segmenter.onnx", "grasprt.role", "'controller'", "swapped"),
    ),
    (
        "image is float",
        with_models(seg=stub("segmenter", [tensor("image", F, [1, 400, 400, 3])], [mask_value()])),
        ("segmenter.onnx", "input 'image'", "dtype float32, expected uint8"),
    ),
    (
        "image is NCHW",
        with_models(seg=stub("segmenter", [tensor("image", U8, [1, 3, 400, 400])], [mask_value()])),
        ("segmenter.onnx", "input 'image'", "[1, 3, 400, 400]", "[1, 400, 400, 3]"),
    ),
    (
        "image has no shape",
        with_models(
            seg=stub(
                "segmenter",
                [helper.make_tensor_value_info("image", U8, None)],
                [mask_value()],
                check=False,
            )
        ),
        ("segmenter.onnx", "shape"),
    ),
    (
        "mask output 3-D",
        with_models(seg=stub("segmenter", [image_input()], [tensor("mask", F, [1, 100, 100])])),
        ("segmenter.onnx", "output 'mask'", "[1, 100, 100]"),
    ),
    (
        "mask output batch 2",
        with_models(seg=stub("segmenter", [image_input()], [tensor("mask", F, [2, 1, 100, 100])])),
        ("segmenter.onnx", "output 'mask'", "[2, 1, 100, 100]"),
    ),
    (
        "symbolic height",
        with_models(seg=stub("segmenter", [tensor("image", U8, [1, "h", 400, 3])], [mask_value()])),
        ("segmenter.onnx", "input 'image'", "[1, h, 400, 3]"),
    ),
    (
        "extra segmenter input",
        with_models(
            seg=stub(
                "segmenter", [image_input(), tensor("depth", F, [1, 400, 400])], [mask_value()]
            )
        ),
        ("segmenter.onnx", "extra input 'depth'"),
    ),
    (
        "state of 7",
        with_models(
            ctrl=stub("controller", [mask_value(), tensor("state", F, [1, 7])], [action_output()])
        ),
        ("controller.onnx: input 'state' has shape [1, 7], expected [1, 8]",),
    ),
    (
        "no state input",
        with_models(ctrl=stub("controller", [mask_value()], [action_output()])),
        ("controller.onnx", "no input 'state'"),
    ),
    (
        "mask input is double",
        with_models(
            ctrl=stub(
                "controller", [tensor("mask", F64, MASK_SHAPE), state_input()], [action_output()]
            )
        ),
        ("controller.onnx", "input 'mask'", "dtype float64, expected float32"),
    ),
    (
        "action renamed",
        with_models(
            ctrl=stub("controller", [mask_value(), state_input()], [tensor("actions", F, [1, 8])])
        ),
        ("controller.onnx", "extra output 'actions'"),
    ),
    (
        "second output",
        with_models(
            ctrl=stub(
                "controller",
                [mask_value(), state_input()],
                [action_output(), tensor("value", F, [1, 1])],
            )
        ),
        ("controller.onnx", "extra output 'value'"),
    ),
]
# Every field the contract requires, removed one at a time.
for _field in (
    "interface",
    "robot",
    "joints",
    "rate_hz",
    "action_scale",
    "mask_threshold",
    "camera",
    "segmenter",
    "controller",
):
    REFUSALS.append((f"no {_field}", manifest(**{_field: MISSING}), (f"'{_field}'", "missing")))


@pytest.mark.parametrize(
    ("build", "words"), [(b, w) for _, b, w in REFUSALS], ids=[i for i, _, _ in REFUSALS]
)
def test_refusal_names_the_fault(
    tmp_path: Path, build: Callable[[Path], Path], words: tuple[str, ...]
) -> None:
    root = build(tmp_path)
    with pytest.raises(BundleError) as err:
        load_bundle(root)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert err.value.exit_code == 2
    assert isinstance(err.value, GrasprtError)


def test_placeholder_bundle_loads_and_runs() -> None:
    bundle = load_bundle(PLACEHOLDER)
    assert bundle.robot == "sawyer"
    assert bundle.joints == SAWYER.joint_names
    assert bundle.provenance["placeholder"] is True
    assert "grasps nothing" in bundle.provenance["note"]
    assert bundle.segmenter_bytes == (PLACEHOLDER / "segmenter.onnx").read_bytes()
    assert (PLACEHOLDER / "segmenter.onnx").stat().st_size + (
        PLACEHOLDER / "controller.onnx"
    ).stat().st_size < 2_000_000
    check_against_profile(bundle, SAWYER)

    rng = np.random.default_rng(0)
    seg = ort.InferenceSession(bundle.segmenter_bytes, providers=["CPUExecutionProvider"])
    (mask,) = seg.run(None, {"image": rng.integers(0, 256, (1, 400, 400, 3), dtype=np.uint8)})
    assert mask.shape == (1, 1, 100, 100) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    ctrl = ort.InferenceSession(bundle.controller_bytes, providers=["CPUExecutionProvider"])
    binary = (mask > bundle.mask_threshold).astype(np.float32)
    state = np.append(SAWYER.neutral, 0.0).astype(np.float32)[None]
    (action,) = ctrl.run(None, {"mask": binary, "state": state})
    assert action.shape == (1, 8) and np.all(np.abs(action) <= 1.0)


def test_factory_bundle_fields(tmp_path: Path) -> None:
    root = write_bundle(
        tmp_path / "b",
        color_segmenter(),
        ramp_controller(),
        action_scale=[0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07],
    )
    bundle = load_bundle(root)
    assert bundle.root == root.absolute()
    assert bundle.interface == 1 and bundle.rate_hz == 10.0 and bundle.mask_threshold == 0.5
    assert bundle.action_scale.dtype == np.float32
    np.testing.assert_allclose(bundle.action_scale, np.arange(1, 8) / 100, rtol=1e-6)
    with pytest.raises(ValueError):
        bundle.action_scale[0] = 1.0  # shared with the loop: nobody may change it
    assert (bundle.camera.width, bundle.camera.height) == (MODEL_SIZE, MODEL_SIZE)
    assert bundle.camera.fx == pytest.approx(SIM_CAMERA["fx"]) and bundle.camera.dist == ()
    assert bundle.controller_bytes == (root / "controller.onnx").read_bytes()
    assert bundle.manifest == json.loads((root / "bundle.json").read_text())
    # Pointing at bundle.json itself is the same bundle.
    assert load_bundle(root / "bundle.json").segmenter_sha256 == bundle.segmenter_sha256


def test_symbolic_batch_and_unknown_keys_accepted(tmp_path: Path) -> None:
    root = write_bundle(
        tmp_path / "b",
        color_segmenter(batch="N"),
        constant_controller([0] * 8),
        future_field={"ignored": True},
    )
    bundle = load_bundle(root)
    seg = ort.InferenceSession(bundle.segmenter_bytes, providers=["CPUExecutionProvider"])
    image = np.zeros((1, 400, 400, 3), np.uint8)
    image[0, 100:140, 200:240] = (237, 204, 20)  # the sim's sphere yellow
    (mask,) = seg.run(None, {"image": image})
    assert mask[0, 0, 25:35, 50:60].min() == 1.0 and mask.sum() == 100.0


def test_describe_is_json_without_bytes(tmp_path: Path) -> None:
    bundle = load_bundle(good(tmp_path))
    d = describe(bundle)
    text = json.dumps(d)
    assert d["segmenter"]["sha256"] == bundle.segmenter_sha256
    assert d["controller"]["bytes"] == len(bundle.controller_bytes)
    assert d["joints"] == list(SAWYER.joint_names)
    assert len(text) < 4000  # the model bytes are not in it
    assert json.loads(text)["camera"]["width"] == 400


def test_profile_mismatch_names_both(tmp_path: Path) -> None:
    bundle = load_bundle(good(tmp_path, robot="ur5"))
    with pytest.raises(BundleError, match=r"'ur5'.*'sawyer'"):
        check_against_profile(bundle, SAWYER)

    swapped = list(SAWYER.joint_names)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    bundle = load_bundle(
        write_bundle(tmp_path / "c", color_segmenter(), ramp_controller(), joints=swapped)
    )
    with pytest.raises(BundleError, match=r"joints\[2\] is 'right_j3'.*'right_j2'"):
        check_against_profile(bundle, SAWYER)
