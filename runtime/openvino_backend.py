"""OpenVINO as an inference backend (`--provider openvino`, the `openvino` extra).

ONNX Runtime's own OpenVINO execution provider needs a separate onnxruntime build;
this uses the ``openvino`` package directly on the same ONNX bytes, with the same
interface as the ONNX Runtime binding (``run()`` over the pipeline's buffers), so the
loop and the bench cannot tell them apart.

Reduced precision here is OpenVINO's inference-precision hint: bf16 where the CPU
reports BF16 (AMX / AVX512-BF16), fp16 where it reports FP16. Elsewhere OpenVINO
would run fp32 under either name, so they are refused with that reason.
"""

from __future__ import annotations

import numpy as np

from grasprt.errors import ConfigError

_HINTS = {"fp32": "f32", "int8": "f32", "bf16": "bf16", "fp16": "f16"}


def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def _core():
    try:
        import openvino as ov
    except ModuleNotFoundError:
        raise ConfigError(
            "--provider openvino needs the openvino extra (pip install 'grasprt[openvino]')"
        ) from None
    return ov, ov.Core()


def capabilities() -> set[str]:
    """What the CPU device reports it can run natively (e.g. FP32, INT8, BF16, FP16)."""
    _, core = _core()
    return set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def unsupported_reason(precision: str) -> str | None:
    if precision in ("fp32", "int8"):
        return None
    caps = capabilities()
    need = {"bf16": "BF16", "fp16": "FP16"}.get(precision)
    if need is None:
        return f"{precision}: unknown to the OpenVINO backend"
    if need not in caps:
        return (
            f"{precision}: this CPU has no native {need} (OpenVINO reports "
            f"{', '.join(sorted(caps))}); it would run fp32"
        )
    return None


def _static(model, inputs: dict[str, np.ndarray]):
    """The model with each dynamic input fixed to its buffer's shape (batch 1).

    The contract's graphs leave the batch open; compiled for one shape, OpenVINO plans
    its memory and kernels once instead of on every run. Measured here (2-core Xeon,
    AMX, bf16 segmenter, a training job on the other core): once a period at 10 Hz
    2.85-2.92 ms against 3.60-3.80 dynamic, back to back about the same."""
    shapes = {
        port.get_any_name(): list(inputs[port.get_any_name()].shape)
        for port in model.inputs
        if port.get_any_name() in inputs and port.get_partial_shape().is_dynamic
    }
    if shapes:
        model.reshape(shapes)
    return model


class OpenVINOBound:
    """One compiled model; inputs read from, outputs written to, the given arrays."""

    def __init__(
        self,
        model: bytes,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        *,
        threads: int,
        precision: str = "fp32",
    ) -> None:
        ov, core = _core()
        why = unsupported_reason(precision)
        if why:
            raise ConfigError(f"--precision {why}")
        compiled = core.compile_model(
            _static(core.read_model(model=model), inputs),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": _HINTS[precision],
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
            },
        )
        self.request = compiled.create_infer_request()
        self._outputs = outputs
        self._inputs = inputs
        # Shared tensors: OpenVINO reads our input arrays in place, no copy per run.
        for name, arr in inputs.items():
            self.request.set_tensor(name, ov.Tensor(arr, shared_memory=True))
        self.session = compiled

    def run(self) -> None:
        self.request.infer()
        for name, arr in self._outputs.items():
            np.copyto(arr, self.request.get_tensor(name).data)
