"""One ONNX graph per cycle: segmenter -> threshold -> controller, composed at load time.

The bundle on disk stays the contract's two models; this builds, in memory, a third
that does both runs and the threshold in between, so a cycle is one session run with
no Python between the models. Inputs ``image`` and ``state``; outputs ``action``,
``mask`` (the binary mask the controller saw, which the loop records) and ``prob``
(the segmenter's probabilities).

The threshold is ``Greater(prob, threshold) -> Cast(float)``: the same comparison the
two-model path makes in NumPy, so the two paths agree bit for bit (tested).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

from grasprt.errors import BundleError

SEG_PREFIX = "seg/"
CTL_PREFIX = "ctl/"
# Names of the fused graph's own tensors.
FUSED_INPUTS = ("image", "state")
FUSED_OUTPUTS = ("action", "mask", "prob")


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _rename(graph: onnx.GraphProto, prefix: str, keep: dict[str, str]) -> None:
    """Prefix every tensor name in ``graph`` (in place), except those in ``keep``,
    which take the given names instead (the graph's inputs and outputs)."""

    def new(name: str) -> str:
        if not name:
            return name  # an omitted optional input
        return keep.get(name, prefix + name)

    for node in graph.node:
        node.input[:] = [new(n) for n in node.input]
        node.output[:] = [new(n) for n in node.output]
        if node.name:
            node.name = prefix + node.name
        for attr in node.attribute:
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                # Subgraphs (If/Loop/Scan) may capture outer names: renaming them safely
                # is more than this needs; such models run unfused.
                raise BundleError(f"fused graph: node {node.op_type} has a subgraph")
    for init in graph.initializer:
        init.name = new(init.name)
    for seq in (graph.input, graph.output, graph.value_info):
        for v in seq:
            v.name = new(v.name)


def _at_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    if _opset(model) == opset:
        return model
    try:
        return version_converter.convert_version(model, opset)
    except Exception as e:  # the converter raises bare RuntimeErrors
        raise BundleError(f"fused graph: cannot bring a model to opset {opset} ({e})") from None


def fuse(
    segmenter: bytes | onnx.ModelProto,
    controller: bytes | onnx.ModelProto,
    threshold: float,
) -> onnx.ModelProto:
    """The fused model; raises :class:`BundleError` when the two cannot be composed."""
    seg, ctl = _own_copy(segmenter), _own_copy(controller)
    for m in (seg, ctl):
        if any(o.domain not in ("", "ai.onnx") for o in m.opset_import):
            raise BundleError("fused graph: custom operator domains are not composed")
    opset = max(_opset(seg), _opset(ctl))
    seg, ctl = _at_opset(seg, opset), _at_opset(ctl, opset)

    _rename(seg.graph, SEG_PREFIX, {"image": "image", "mask": "prob"})
    _rename(ctl.graph, CTL_PREFIX, {"mask": "mask", "state": "state", "action": "action"})
    thr = numpy_helper.from_array(np.asarray(threshold, dtype=np.float32), "fused/threshold")
    glue = [
        helper.make_node("Greater", ["prob", "fused/threshold"], ["fused/above"]),
        helper.make_node("Cast", ["fused/above"], ["mask"], to=TensorProto.FLOAT),
    ]
    seg_out = {v.name: v for v in seg.graph.output}
    ctl_in = {v.name: v for v in ctl.graph.input}
    ctl_out = {v.name: v for v in ctl.graph.output}
    mask_info = onnx.ValueInfoProto()
    mask_info.CopyFrom(ctl_in["mask"])
    graph = helper.make_graph(
        [*seg.graph.node, *glue, *ctl.graph.node],
        "grasprt_fused",
        [v for v in seg.graph.input if v.name == "image"]
        + [v for v in ctl.graph.input if v.name == "state"],
        [ctl_out["action"], mask_info, seg_out["prob"]],
        [*seg.graph.initializer, thr, *ctl.graph.initializer],
        value_info=[*seg.graph.value_info, *ctl.graph.value_info],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="grasprt.fused",
    )
    model.ir_version = max(seg.ir_version, ctl.ir_version)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()
        raise BundleError(f"fused graph fails onnx.checker: {first[0] if first else e}") from None
    return model


def _own_copy(model: bytes | onnx.ModelProto) -> onnx.ModelProto:
    """A copy we may rename in place (the caller's model stays as it was)."""
    if isinstance(model, bytes):
        return onnx.load_from_string(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def fused_bytes(segmenter: bytes, controller: bytes, threshold: float) -> bytes:
    return fuse(segmenter, controller, threshold).SerializeToString()
