"""Load a model bundle and hold it to INTERFACE.md (version 1) before any robot moves.

Every refusal is a :class:`~grasprt.errors.BundleError` whose one line names the file and
the field or tensor at fault. The ONNX files are read once: the same bytes are hashed,
checked and later handed to ONNX Runtime, so what was checked is what runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto
from onnx.external_data_helper import uses_external_data

from grasprt.config import area_range_problem
from grasprt.errors import BundleError
from grasprt.profiles import RobotProfile
from grasprt.types import Intrinsics

INTERFACE_VERSION = 1
MANIFEST = "bundle.json"
MODEL_SIZE = 400  # the segmenter's square input, pixels
MASK_SIZE = 100  # the mask's square side, pixels
N_JOINTS = 7
STATE_SIZE = N_JOINTS + 1  # joints, then gripper

ROLES = ("segmenter", "controller")


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the contract. The first dimension is the batch: 1 or symbolic."""

    name: str
    dtype: int  # onnx.TensorProto element type
    shape: tuple[int, ...]


IMAGE = TensorSpec("image", TensorProto.UINT8, (1, MODEL_SIZE, MODEL_SIZE, 3))
MASK = TensorSpec("mask", TensorProto.FLOAT, (1, 1, MASK_SIZE, MASK_SIZE))
STATE = TensorSpec("state", TensorProto.FLOAT, (1, STATE_SIZE))
ACTION = TensorSpec("action", TensorProto.FLOAT, (1, STATE_SIZE))

# role -> (inputs, outputs)
CONTRACT: dict[str, tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]] = {
    "segmenter": ((IMAGE,), (MASK,)),
    "controller": ((MASK, STATE), (ACTION,)),
}

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, eq=False)
class Bundle:
    """A bundle that passed every check. ``action_scale`` is read-only."""

    root: Path
    interface: int
    robot: str
    joints: tuple[str, ...]
    rate_hz: float
    action_scale: np.ndarray  # (7,) float32, rad per unit of action
    mask_threshold: float
    camera: Intrinsics
    segmenter_path: Path
    controller_path: Path
    segmenter_bytes: bytes
    controller_bytes: bytes
    segmenter_sha256: str
    controller_sha256: str
    provenance: dict[str, Any]
    manifest: dict[str, Any]


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # JSON integers have no size limit; floats do
        return False


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Manifest:
    """Field readers that name ``bundle.json`` and the field in every refusal."""

    def __init__(self, doc: dict[str, Any], where: str) -> None:
        self.doc = doc
        self.where = where

    def fail(self, field: str, problem: str) -> BundleError:
        return BundleError(f"{self.where}: field '{field}' {problem}")

    def get(self, field: str, container: Mapping[str, Any] | None = None) -> Any:
        doc = self.doc if container is None else container
        key = field.rsplit(".", 1)[-1]
        if key not in doc:
            raise BundleError(f"{self.where}: field '{field}' is missing")
        return doc[key]

    def number(self, field: str, container: Mapping[str, Any] | None = None) -> float:
        v = self.get(field, container)
        if not _is_number(v) or not _is_finite(v):
            raise self.fail(field, f"must be a finite number, got {v!r}")
        return float(v)

    def positive(self, field: str) -> float:
        v = self.number(field)
        if v <= 0:
            raise self.fail(field, f"must be positive, got {v!r}")
        return v

    def string(self, field: str) -> str:
        v = self.get(field)
        if not isinstance(v, str) or not v:
            raise self.fail(field, f"must be a non-empty string, got {v!r}")
        return v

    def obj(self, field: str) -> dict[str, Any]:
        v = self.get(field)
        if not isinstance(v, dict):
            raise self.fail(field, f"must be an object, got {type(v).__name__}")
        return v


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not root.exists():
        raise BundleError(f"{root}: no such bundle directory")
    if not root.is_dir():
        raise BundleError(f"{root}: not a directory (a bundle is a directory with {MANIFEST})")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path}: missing (every bundle has a {MANIFEST})") from None
    except OSError as e:
        raise BundleError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"{path}: not UTF-8 (byte 0x{raw[e.start]:02x} at {e.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BundleError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path}: must hold a JSON object, holds {type(doc).__name__}")
    return doc


def _check_interface(m: _Manifest) -> int:
    v = m.get("interface")
    if not isinstance(v, int) or isinstance(v, bool):
        raise m.fail("interface", f"must be the integer {INTERFACE_VERSION}, got {v!r}")
    if v != INTERFACE_VERSION:
        raise m.fail("interface", f"is {v}; this grasprt reads interface {INTERFACE_VERSION}")
    return v


def _check_joints(m: _Manifest) -> tuple[str, ...]:
    v = m.get("joints")
    if (
        not isinstance(v, list)
        or len(v) != N_JOINTS
        or not all(isinstance(j, str) and j for j in v)
    ):
        raise m.fail("joints", f"must be a list of {N_JOINTS} non-empty strings")
    if len(set(v)) != N_JOINTS:
        dup = next(j for j in v if v.count(j) > 1)
        raise m.fail("joints", f"names {dup!r} twice")
    return tuple(v)


def _check_action_scale(m: _Manifest) -> np.ndarray:
    v = m.get("action_scale")
    if not isinstance(v, list) or len(v) != N_JOINTS or not all(_is_number(x) for x in v):
        raise m.fail("action_scale", f"must be a list of {N_JOINTS} numbers")
    bad = [x for x in v if not (_is_finite(x) and x > 0)]
    if bad:
        raise m.fail("action_scale", f"must hold positive finite numbers, holds {bad[0]!r}")
    scale = np.asarray(v, dtype=np.float32)
    scale.setflags(write=False)
    return scale


def _check_threshold(m: _Manifest) -> float:
    v = m.number("mask_threshold")
    if not 0.0 < v < 1.0:
        raise m.fail("mask_threshold", f"must lie strictly between 0 and 1, got {v!r}")
    return v


def _check_camera(m: _Manifest) -> Intrinsics:
    cam = m.obj("camera")
    size = {}
    for key in ("width", "height"):
        v = m.get(f"camera.{key}", cam)
        if not isinstance(v, int) or isinstance(v, bool):
            raise m.fail(f"camera.{key}", f"must be an integer, got {v!r}")
        if v != MODEL_SIZE:
            raise m.fail(
                f"camera.{key}", f"is {v}, the segmenter's input is {MODEL_SIZE}x{MODEL_SIZE}"
            )
        size[key] = v
    k = {key: m.number(f"camera.{key}", cam) for key in ("fx", "fy", "cx", "cy")}
    for key in ("fx", "fy"):
        if k[key] <= 0:
            raise m.fail(f"camera.{key}", f"must be positive, got {k[key]!r}")
    for key in ("cx", "cy"):
        if not 0.0 <= k[key] <= MODEL_SIZE:
            raise m.fail(
                f"camera.{key}", f"must lie in the image [0, {MODEL_SIZE}], got {k[key]!r}"
            )
    _check_no_distortion(m, cam)
    return Intrinsics.from_dict({**size, **k}, where=m.where)


def _check_no_distortion(m: _Manifest, cam: dict[str, Any]) -> None:
    """``dist`` is optional and must be empty (or zeros): the model view maps the real
    camera into the bundle's camera as a plain pinhole and would ignore any distortion."""
    dist = cam.get("dist", [])
    if not isinstance(dist, list) or not all(_is_number(v) and _is_finite(v) for v in dist):
        raise m.fail("camera.dist", f"must be a list of finite numbers, got {dist!r}")
    if any(dist):
        raise m.fail("camera.dist", "must be empty: a bundle's camera is an undistorted pinhole")


def _model_entry(m: _Manifest, root: Path, role: str) -> tuple[Path, str, str]:
    """The model's resolved path, its path as written, and the sha256 the manifest claims."""
    entry = m.obj(role)
    rel = m.get(f"{role}.path", entry)
    if not isinstance(rel, str) or not rel:
        raise m.fail(f"{role}.path", f"must be a non-empty string, got {rel!r}")
    if Path(rel).is_absolute():
        raise m.fail(f"{role}.path", f"must be relative to the bundle, got {rel!r}")
    path = root / rel
    # Resolving follows symlinks too, so a link pointing out of the bundle is refused.
    if not path.resolve().is_relative_to(root.resolve()):
        raise m.fail(f"{role}.path", f"{rel!r} leads out of the bundle directory")
    sha = m.get(f"{role}.sha256", entry)
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise m.fail(f"{role}.sha256", "must be 64 hex digits")
    return path, rel, sha.lower()


def _read_model(path: Path, rel: str, role: str, want_sha: str) -> tuple[bytes, onnx.ModelProto]:
    if not path.is_file():
        raise BundleError(f"{path}: missing (bundle.json field '{role}.path' names {rel!r})")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BundleError(f"{path}: cannot read ({e.strerror})") from None
    got = _sha256(data)
    if got != want_sha:
        raise BundleError(f"{path}: sha256 is {got[:12]}…, bundle.json says {want_sha[:12]}…")
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError) as e:
        raise BundleError(f"{path}: not an ONNX model ({_first_line(e)})") from None
    if any(uses_external_data(t) for t in proto.graph.initializer):
        raise BundleError(
            f"{path}: keeps weights in external data files; a bundle model must be one file"
        )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise BundleError(f"{path}: fails onnx.checker: {_first_line(e)}") from None
    return data, proto


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def _check_metadata(proto: onnx.ModelProto, path: Path, role: str) -> None:
    props = {p.key: p.value for p in proto.metadata_props}
    iface = props.get("grasprt.interface")
    if iface is None:
        raise BundleError(f"{path}: metadata 'grasprt.interface' is missing (expected \"1\")")
    if iface != str(INTERFACE_VERSION):
        raise BundleError(
            f"{path}: metadata 'grasprt.interface' is {iface!r}, expected \"{INTERFACE_VERSION}\""
        )
    got_role = props.get("grasprt.role")
    if got_role is None:
        raise BundleError(f"{path}: metadata 'grasprt.role' is missing (expected {role!r})")
    if got_role != role:
        raise BundleError(
            f"{path}: metadata 'grasprt.role' is {got_role!r}, expected {role!r} "
            "(segmenter and controller swapped?)"
        )


def _dtype_name(elem_type: int) -> str:
    """numpy's name where there is one (float32, not ONNX's FLOAT), else ONNX's."""
    if elem_type == TensorProto.UNDEFINED:
        return "undefined"
    try:
        name = str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        name = "object"
    return TensorProto.DataType.Name(elem_type).lower() if name == "object" else name


def _dims(value: onnx.ValueInfoProto) -> list[int | str] | None:
    tt = value.type.tensor_type
    if not tt.HasField("shape"):
        return None
    out: list[int | str] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append("?")
    return out


def _fmt_shape(dims: Sequence[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _check_tensor(value: onnx.ValueInfoProto, spec: TensorSpec, path: Path, kind: str) -> None:
    what = f"{path}: {kind} '{spec.name}'"
    if value.type.WhichOneof("value") != "tensor_type":
        raise BundleError(f"{what} is not a tensor")
    elem = value.type.tensor_type.elem_type
    if elem != spec.dtype:
        raise BundleError(
            f"{what} has dtype {_dtype_name(elem)}, expected {_dtype_name(spec.dtype)}"
        )
    dims = _dims(value)
    if dims is None:
        raise BundleError(f"{what} has no shape, expected {_fmt_shape(spec.shape)}")
    batch_ok = bool(dims) and (dims[0] == 1 or isinstance(dims[0], str))
    if len(dims) != len(spec.shape) or not batch_ok or tuple(dims[1:]) != spec.shape[1:]:
        raise BundleError(f"{what} has shape {_fmt_shape(dims)}, expected {_fmt_shape(spec.shape)}")


def _check_io(proto: onnx.ModelProto, path: Path, role: str) -> None:
    want_in, want_out = CONTRACT[role]
    # Old exporters list initializers as graph inputs; they are weights, not inputs.
    weights = {t.name for t in proto.graph.initializer}
    for kind, values, specs in (
        ("input", [v for v in proto.graph.input if v.name not in weights], want_in),
        ("output", list(proto.graph.output), want_out),
    ):
        by_name = {v.name: v for v in values}
        names = [s.name for s in specs]
        for v in values:
            if v.name not in names:
                raise BundleError(
                    f"{path}: has an extra {kind} {v.name!r}; the contract's {kind}s are "
                    + ", ".join(repr(n) for n in names)
                )
        for spec in specs:
            if spec.name not in by_name:
                have = ", ".join(repr(n) for n in by_name) or "none"
                raise BundleError(f"{path}: has no {kind} {spec.name!r} ({kind}s: {have})")
            _check_tensor(by_name[spec.name], spec, path, kind)


def check_contract(proto: onnx.ModelProto, role: str, path: Path | str = "") -> None:
    """Hold an already-parsed model to its role's metadata and tensors (no checker, no hash)."""
    where = Path(path or f"{role}.onnx")
    _check_metadata(proto, where, role)
    _check_io(proto, where, role)


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate the bundle directory at ``path`` (or its ``bundle.json``)."""
    root = Path(path)
    if root.name == MANIFEST and root.is_file():
        root = root.parent
    doc = _read_manifest(root)
    m = _Manifest(doc, str(root / MANIFEST))

    interface = _check_interface(m)
    robot = m.string("robot")
    joints = _check_joints(m)
    rate_hz = m.positive("rate_hz")
    action_scale = _check_action_scale(m)
    mask_threshold = _check_threshold(m)
    camera = _check_camera(m)
    provenance = doc.get("provenance", {})
    if not isinstance(provenance, dict):
        raise m.fail(
            "provenance", f"must be an object when present, got {type(provenance).__name__}"
        )
    if "mask_area" in provenance:
        problem = area_range_problem(provenance["mask_area"])
        if problem:
            raise m.fail("provenance.mask_area", problem)

    entries = {role: _model_entry(m, root, role) for role in ROLES}
    data: dict[str, bytes] = {}
    shas: dict[str, str] = {}
    for role in ROLES:
        model_path, rel, sha = entries[role]
        data[role], proto = _read_model(model_path, rel, role, sha)
        check_contract(proto, role, model_path)
        shas[role] = sha
    return Bundle(
        root=root.absolute(),
        interface=interface,
        robot=robot,
        joints=joints,
        rate_hz=rate_hz,
        action_scale=action_scale,
        mask_threshold=mask_threshold,
        camera=camera,
        segmenter_path=entries["segmenter"][0].absolute(),
        controller_path=entries["controller"][0].absolute(),
        segmenter_bytes=data["segmenter"],
        controller_bytes=data["controller"],
        segmenter_sha256=shas["segmenter"],
        controller_sha256=shas["controller"],
        provenance=provenance,
        manifest=doc,
    )


def declared_mask_area(bundle: Bundle) -> tuple[float, float] | None:
    """The mask-area range (fractions of the mask) the bundle's provenance declares, if
    any: what its segmenter produced on its training data (checked at load)."""
    area = bundle.provenance.get("mask_area")
    return None if area is None else (float(area[0]), float(area[1]))


def check_against_profile(bundle: Bundle, profile: RobotProfile) -> None:
    """Refuse a bundle trained for another robot, or with its joints in another order."""
    where = bundle.root / MANIFEST
    if bundle.robot != profile.name:
        raise BundleError(
            f"{where}: robot is {bundle.robot!r}, but this run's robot profile is {profile.name!r}"
        )
    ours, theirs = tuple(bundle.joints), tuple(profile.joint_names)
    if ours != theirs:
        n = max(len(ours), len(theirs))
        padded = zip(ours + ("nothing",) * n, theirs + ("nothing",) * n, strict=False)
        i, (got, want) = next((i, p) for i, p in enumerate(padded) if p[0] != p[1])
        raise BundleError(
            f"{where}: joints[{i}] is {got!r}, but robot profile {profile.name!r} has {want!r} "
            "there (joint order must match)"
        )


def describe(bundle: Bundle) -> dict[str, Any]:
    """The bundle as plain JSON-ready data, for ``--json`` and run records (no model bytes)."""
    return {
        "root": str(bundle.root),
        "interface": bundle.interface,
        "robot": bundle.robot,
        "joints": list(bundle.joints),
        "rate_hz": bundle.rate_hz,
        "action_scale": [float(x) for x in bundle.action_scale],
        "mask_threshold": bundle.mask_threshold,
        "camera": bundle.camera.to_dict(),
        "segmenter": {
            "path": str(bundle.segmenter_path),
            "sha256": bundle.segmenter_sha256,
            "bytes": len(bundle.segmenter_bytes),
        },
        "controller": {
            "path": str(bundle.controller_path),
            "sha256": bundle.controller_sha256,
            "bytes": len(bundle.controller_bytes),
        },
        "provenance": bundle.provenance,
    }
