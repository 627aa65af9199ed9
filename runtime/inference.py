"""The two ONNX Runtime sessions of a bundle, created once, run with bound buffers.

Per cycle the loop writes the model-view image into a preallocated input buffer and
reads the mask and action from preallocated outputs: ``run_with_iobinding`` with
OrtValues over our own numpy arrays, so the 10 Hz path allocates nothing of note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from grasprt.bundle import ACTION, IMAGE, MASK, N_JOINTS, STATE, Bundle
from grasprt.config import InferenceSettings
from grasprt.errors import ConfigError
from grasprt.runtime.tuned import warn_if_tuned_elsewhere

if TYPE_CHECKING:
    from grasprt.runtime.quantize import ViewSource

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(cfg: InferenceSettings) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = _OPT_LEVELS[cfg.graph_optimization]
    so.intra_op_num_threads = cfg.intra_op_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if cfg.allow_spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.log_severity_level = 3
    return so


def make_session(model: bytes, cfg: InferenceSettings) -> ort.InferenceSession:
    wanted = PROVIDERS[cfg.provider]
    available = ort.get_available_providers()
    if wanted not in available:
        raise ConfigError(
            f"provider {cfg.provider!r} is not available in this onnxruntime "
            f"(available: {', '.join(available)})"
        )
    providers = [wanted] if wanted == "CPUExecutionProvider" else [wanted, "CPUExecutionProvider"]
    return ort.InferenceSession(model, sess_options=session_options(cfg), providers=providers)


class _Bound:
    """One session with OrtValues bound over our numpy buffers."""

    def __init__(
        self,
        session: ort.InferenceSession,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
    ) -> None:
        self.session = session
        self.binding = session.io_binding()
        # OrtValues keep pointers into the arrays: the arrays must outlive them.
        self._keep = (inputs, outputs)
        for name, arr in inputs.items():
            self.binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr))
        for name, arr in outputs.items():
            self.binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(arr))

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)


def _bind(
    model: bytes,
    cfg: InferenceSettings,
    inputs: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
) -> _Bound:
    if cfg.provider == "openvino" and PROVIDERS["openvino"] not in ort.get_available_providers():
        # No OpenVINO build of onnxruntime here: the openvino package runs the same graph.
        from grasprt.runtime.openvino_backend import OpenVINOBound

        hint = cfg.precision if cfg.precision in ("fp16", "bf16") else "fp32"
        return OpenVINOBound(  # type: ignore[return-value]
            model, inputs, outputs, threads=cfg.intra_op_threads, precision=hint
        )
    return _Bound(make_session(model, cfg), inputs, outputs)


# Runs of each graph before the first cycle (Pipeline.warm_up).
WARM_UP_RUNS = 3


class Pipeline:
    """Segmenter -> threshold -> controller, on preallocated buffers.

    The arrays ``image``, ``mask``, ``state`` are the bound inputs; ``prob`` and
    ``action`` the bound outputs. Callers write into inputs with ``np.copyto``.

    Two-model path (``fused=False``): each call runs what its name says.

    Fused path (``fused=True``): when the state for this cycle was given first
    (``set_state``, as the loop does), ``segment`` runs the one fused graph, which fills
    ``prob``, ``mask`` and ``action`` together; ``threshold`` then returns that mask and
    ``control`` that action, for the same state, without running anything. Without a
    staged state, or after ``set_mask`` (``--gt-mask``), the separate sessions run, so
    every method keeps its meaning for any caller.

    ``admitted``: the gate verdict a caller already measured for this precision
    (``grasprt bench --tune``), taken instead of gating again.
    """

    def __init__(
        self,
        bundle: Bundle,
        cfg: InferenceSettings | None = None,
        *,
        segmenter_bytes: bytes | None = None,
        views: ViewSource | None = None,
        admitted: Any = None,
    ) -> None:
        self.cfg = cfg or InferenceSettings()
        # A pick saved on another CPU: say so; a reduced precision is gated below anyway.
        warn_if_tuned_elsewhere(self.cfg)
        self.threshold_value = np.float32(bundle.mask_threshold)
        self.image = np.zeros(IMAGE.shape, dtype=np.uint8)
        self.prob = np.zeros(MASK.shape, dtype=np.float32)
        self.mask = np.zeros(MASK.shape, dtype=np.float32)
        self.state = np.zeros(STATE.shape, dtype=np.float32)
        self.action = np.zeros(ACTION.shape, dtype=np.float32)
        self._above = np.zeros(MASK.shape, dtype=bool)
        self._given_state = np.zeros(STATE.shape, dtype=np.float32)
        seg_model = segmenter_bytes
        # The reduced-precision verdict this pipeline runs under (None: fp32 or given).
        self.gate: Any = admitted
        if seg_model is None and self.cfg.precision == "int8":
            from grasprt.runtime.quantize import reduced_segmenter

            self.gate = reduced_segmenter(bundle, self.cfg.precision, self.cfg, views)
            seg_model = self.gate.model
        self.segmenter_model = seg_model or bundle.segmenter_bytes
        if self.cfg.precision in ("fp16", "bf16") and admitted is None:
            from grasprt.runtime.quantize import admit_hinted

            # The hint applies to both models; the gate judges the segmenter's masks.
            self.gate = admit_hinted(bundle, self.cfg, views)
        self.segmenter = _bind(
            self.segmenter_model, self.cfg, {"image": self.image}, {"mask": self.prob}
        )
        self.controller = _bind(
            bundle.controller_bytes,
            self.cfg,
            {"mask": self.mask, "state": self.state},
            {"action": self.action},
        )
        self.fused: _Bound | None = None
        if self.cfg.fused:
            from grasprt.runtime.fused import fused_bytes

            model = fused_bytes(
                self.segmenter_model, bundle.controller_bytes, bundle.mask_threshold
            )
            self.fused = _bind(
                model,
                self.cfg,
                {"image": self.image, "state": self.state},
                {"action": self.action, "mask": self.mask, "prob": self.prob},
            )
        self._state_given = False
        self._fused_done = False
        # Fused graph runs so far (what the bench and tests read to see the path taken).
        self.fused_runs = 0

    def warm_up(self, runs: int = WARM_UP_RUNS) -> None:
        """Before the first cycle: every graph the loop may run, `runs` times on the
        buffers as they are, and the outputs cleared again. An engine's first runs plan
        its memory and start its threads: without this, `grasprt run` on the 2-core AMD
        EPYC (ONNX Runtime fp32) took 55 and 101 ms in the models of its first two
        cycles and 6 ms after, and its second cycle overran the period."""
        graphs = [self.segmenter, self.controller]
        if self.fused is not None:
            graphs.append(self.fused)
        for _ in range(runs):
            for g in graphs:
                g.run()
        for out in (self.prob, self.mask, self.action):
            out.fill(0.0)

    def prewarm(self, *, segmenter: bool = True) -> None:
        """Run the graphs the last cycle ran on its own inputs again: the same outputs
        into the same buffers, and the caches and engine threads warm for the next
        cycle (``[inference] prewarm_ms``). `segmenter` False: the controller alone."""
        if not segmenter:
            self.controller.run()
        elif self.fused is not None:
            self.fused.run()
        else:
            self.segmenter.run()
            self.controller.run()

    def set_state(self, q: np.ndarray, gripper: float) -> None:
        """This cycle's robot state, before ``segment``: lets the fused path run whole."""
        self._write_state(q, gripper)
        np.copyto(self._given_state, self.state)
        self._state_given = True

    def _write_state(self, q: np.ndarray, gripper: float) -> None:
        self.state[0, :N_JOINTS] = q
        self.state[0, N_JOINTS] = gripper

    def segment(self, view: np.ndarray) -> np.ndarray:
        np.copyto(self.image[0], view)
        if self.fused is not None and self._state_given:
            np.copyto(self.state, self._given_state)
            self.fused.run()
            self.fused_runs += 1
            self._fused_done = True
        else:
            self.segmenter.run()
            self._fused_done = False
        self._state_given = False
        return self.prob

    def threshold(self, prob: np.ndarray | None = None) -> np.ndarray:
        """Binary mask for the controller: 1.0 where probability > threshold (INTERFACE.md)."""
        if self._fused_done and prob is None:
            return self.mask  # the fused graph made it, with the same comparison
        np.greater(self.prob if prob is None else prob, self.threshold_value, out=self._above)
        np.copyto(self.mask, self._above)
        self._fused_done = False
        return self.mask

    def set_mask(self, mask: np.ndarray) -> np.ndarray:
        """Feed a mask from elsewhere (the simulator's truth, for --gt-mask)."""
        np.copyto(self.mask[0, 0], mask)
        self._fused_done = False
        self._state_given = False
        return self.mask

    def control(self, q: np.ndarray, gripper: float) -> np.ndarray:
        self._write_state(q, gripper)
        if not (self._fused_done and np.array_equal(self.state, self._given_state)):
            self.controller.run()
        self._fused_done = False
        return self.action[0]
