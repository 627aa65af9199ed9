"""The bundle's own weights in PyTorch eager, for `grasprt bench --compare torch`.

The ONNX graphs' initializers are loaded by name into :class:`Segmenter` and
:class:`Controller` (the exporter names them ``net.<layer>.<param>``), the fixed pre-
and post-processing from the same graphs (``mean``, ``std``, ``state_offset``,
``state_scale``); then each eager model is checked against ONNX Runtime on one input,
so a bundle whose graphs are not these networks is refused rather than compared.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from grasprt.bundle import Bundle
from grasprt.errors import BundleError
from grasprt.export.models import Controller, ControllerGraph, Segmenter, SegmenterGraph

PARITY_TOL = 1e-4


def _weights(model_bytes: bytes) -> dict[str, np.ndarray]:
    m = onnx.load_from_string(model_bytes)
    return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


def _net_state(weights: dict[str, np.ndarray], net: torch.nn.Module, role: str) -> None:
    wanted = net.state_dict()
    state = {}
    for name in wanted:
        key = f"net.{name}"
        if key not in weights:
            raise BundleError(
                f"--compare torch: the {role} graph has no initializer {key!r}: "
                "not the paper's network as grasprt exports it"
            )
        state[name] = torch.from_numpy(np.array(weights[key]))
    net.load_state_dict(state)


class EagerPair:
    """The segmenter and controller graphs in eager mode, ready to time."""

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self.torch_version = torch.__version__
        seg_w = _weights(bundle.segmenter_bytes)
        ctl_w = _weights(bundle.controller_bytes)
        widths = [
            seg_w[f"net.conv{i}.weight"].shape[0] if f"net.conv{i}.weight" in seg_w else 0
            for i in range(1, 5)
        ]
        if 0 in widths:
            raise BundleError("--compare torch: the segmenter graph is not the paper's network")
        seg_net = Segmenter(widths)
        _net_state(seg_w, seg_net, "segmenter")
        ctl_net = Controller()
        _net_state(ctl_w, ctl_net, "controller")
        self.segmenter = SegmenterGraph(seg_net).eval()
        for name in ("mean", "std"):
            if name in seg_w:
                getattr(self.segmenter, name).copy_(torch.from_numpy(np.array(seg_w[name])))
        offset = ctl_w.get("state_offset")
        scale = ctl_w.get("state_scale")
        if offset is None or scale is None:
            raise BundleError("--compare torch: the controller graph has no state normalisation")
        self.controller = ControllerGraph(
            ctl_net, np.array(offset).ravel(), np.array(scale).ravel()
        ).eval()

    @torch.inference_mode()
    def segment(self, image: np.ndarray) -> np.ndarray:
        return self.segmenter(torch.from_numpy(image)).numpy()

    @torch.inference_mode()
    def control(self, mask: np.ndarray, state: np.ndarray) -> np.ndarray:
        return self.controller(torch.from_numpy(mask), torch.from_numpy(state)).numpy()

    def check_parity(
        self,
        seg_onnx: np.ndarray,
        ctl_onnx: np.ndarray,
        image: np.ndarray,
        mask: np.ndarray,
        state: np.ndarray,
    ) -> float:
        """Largest difference from ONNX Runtime's outputs on the same inputs."""
        err = max(
            float(np.abs(self.segment(image) - seg_onnx).max()),
            float(np.abs(self.control(mask, state) - ctl_onnx).max()),
        )
        if err > PARITY_TOL:
            raise BundleError(
                f"--compare torch: eager and ONNX differ by {err:.2g} (> {PARITY_TOL}): "
                "the weights did not map onto the eager networks"
            )
        return err
