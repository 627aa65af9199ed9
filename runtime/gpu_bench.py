"""``grasprt bench --gpu``: the CUDA and TensorRT execution providers against the CPU,
model by model, in one run (tools/gpu_bench.sh prepares the environment).

Configurations, each timed on the bundle's segmenter and controller (p50 of ``reps``
runs after warm-up, synchronised by the run itself returning):

- ``cpu fp32``: ONNX Runtime's CPU provider, host buffers (the baseline);
- ``cuda fp32, host buffers``: inputs and outputs in host memory, copied each run;
- ``cuda fp32, I/O binding``: inputs and outputs bound on the device (the copies out
  of the timed run, as a camera writing into pinned/device memory would leave them);
- ``cuda fp16, I/O binding``: the graphs converted to fp16 (inputs and outputs kept
  in their types);
- ``tensorrt fp32`` / ``tensorrt fp16`` (``trt_fp16_enable``), I/O binding.

A configuration that cannot run here (no TensorRT libraries) is its own line with
the reason; the rest still run. Without an NVIDIA GPU and a CUDA build of ONNX Runtime
the whole path is refused before anything is measured (:func:`gpu_refusal`).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from grasprt.bundle import MASK, STATE, Bundle

CONFIGS: tuple[tuple[str, str, bool, bool], ...] = (
    # name, ONNX Runtime provider, fp16 graph/engine, device I/O binding
    ("cpu fp32", "CPUExecutionProvider", False, False),
    ("cuda fp32, host buffers", "CUDAExecutionProvider", False, False),
    ("cuda fp32, I/O binding", "CUDAExecutionProvider", False, True),
    ("cuda fp16, I/O binding", "CUDAExecutionProvider", True, True),
    ("tensorrt fp32, I/O binding", "TensorrtExecutionProvider", False, True),
    ("tensorrt fp16, I/O binding", "TensorrtExecutionProvider", True, True),
)


def gpu_refusal(providers: list[str] | None = None, has_gpu: bool | None = None) -> str | None:
    """Why ``--gpu`` cannot run here, in one line (None: it can)."""
    import onnxruntime as ort

    providers = ort.get_available_providers() if providers is None else providers
    if "CUDAExecutionProvider" not in providers:
        return (
            "--gpu: this onnxruntime has no CUDA execution provider (available: "
            f"{', '.join(providers)}); on an NVIDIA machine run tools/gpu_bench.sh, which "
            "installs the gpu extra (onnxruntime-gpu) in its own environment"
        )
    if has_gpu is None:
        has_gpu = Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None
    if not has_gpu:
        return "--gpu: no NVIDIA GPU here (no /dev/nvidia0, no nvidia-smi)"
    return None


def _device() -> dict[str, Any]:
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return {"nvidia_smi": f"unavailable: {e}"}
    return {"nvidia_smi": out}


def _fp16(model: bytes) -> bytes:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = convert_float_to_float16(onnx.load_from_string(model), keep_io_types=True)
    return m.SerializeToString()


def _session(model: bytes, provider: str, fp16: bool) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 2
    opts: dict[str, Any] = {}
    if provider == "TensorrtExecutionProvider":
        opts = {"trt_fp16_enable": fp16}
    elif fp16:
        model = _fp16(model)
    providers = [(provider, opts)] if provider == "CPUExecutionProvider" else [
        (provider, opts), "CPUExecutionProvider"
    ]
    sess = ort.InferenceSession(model, sess_options=so, providers=providers)
    if sess.get_providers()[0] != provider:
        raise RuntimeError(f"{provider} did not take the graph (ran on {sess.get_providers()})")
    return sess


def _time_model(sess: Any, feeds: dict[str, np.ndarray], device: bool, reps: int) -> float:
    import onnxruntime as ort

    binding = sess.io_binding()
    where = "cuda" if device else "cpu"
    for name, arr in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, where, 0))
    for out in sess.get_outputs():
        binding.bind_output(out.name, where)
    for _ in range(5):
        sess.run_with_iobinding(binding)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run_with_iobinding(binding)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def _feeds(bundle: Bundle, view: np.ndarray) -> tuple[dict, dict]:
    seg = {"image": np.ascontiguousarray(view[None]).astype(np.uint8)}
    mask = np.zeros(MASK.shape, dtype=np.float32)
    state = np.zeros(STATE.shape, dtype=np.float32)
    return seg, {"mask": mask, "state": state}


def gpu_bench(bundle: Bundle, view: np.ndarray, reps: int) -> dict[str, Any]:
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):  # pip's CUDA/cuDNN libraries, found by ORT itself
        ort.preload_dlls()
    seg_in, ctl_in = _feeds(bundle, view)
    rows: dict[str, Any] = {}
    for name, provider, fp16, device in CONFIGS:
        try:
            seg_s = _session(bundle.segmenter_bytes, provider, fp16)
            seg = _time_model(seg_s, seg_in, device, reps)
            ctl_s = _session(bundle.controller_bytes, provider, fp16)
            ctl = _time_model(ctl_s, ctl_in, device, reps)
            rows[name] = {"segmenter_ms": seg, "controller_ms": ctl, "sum_ms": seg + ctl}
        except Exception as e:  # one configuration that cannot run is its own line
            rows[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
    base = rows.get("cpu fp32", {}).get("sum_ms")
    for r in rows.values():
        if base and r.get("sum_ms"):
            r["speedup_vs_cpu"] = base / r["sum_ms"]
    return {"device": _device(), "onnxruntime": ort.__version__, "reps": reps, "configs": rows}
