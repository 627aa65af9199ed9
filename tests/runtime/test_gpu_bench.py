"""The GPU path without a GPU: every way in is refused in one line, before anything
is measured or installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from grasprt.runtime.gpu_bench import CONFIGS, gpu_refusal

REPO = Path(__file__).resolve().parents[2]
NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()


def test_refusals_name_what_is_missing() -> None:
    why = gpu_refusal(providers=["CPUExecutionProvider"])
    assert why is not None and "no CUDA execution provider" in why and "gpu_bench.sh" in why
    why = gpu_refusal(providers=["CUDAExecutionProvider", "CPUExecutionProvider"], has_gpu=False)
    assert why is not None and "no NVIDIA GPU" in why
    assert gpu_refusal(providers=["CUDAExecutionProvider"], has_gpu=True) is None


def test_every_gpu_configuration_is_timed_against_the_cpu() -> None:
    names = [c[0] for c in CONFIGS]
    assert names[0] == "cpu fp32"
    providers = {c[1] for c in CONFIGS}
    assert {"CUDAExecutionProvider", "TensorrtExecutionProvider"} <= providers
    # fp32 and fp16 on each GPU provider, and I/O binding on the device.
    for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        assert {c[2] for c in CONFIGS if c[1] == p} == {False, True}
        assert any(c[3] for c in CONFIGS if c[1] == p)


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime has CUDA")
def test_bench_gpu_is_one_line_exit_2_here() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "bench", "--gpu", "--cycles", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "CUDA" in r.stderr


def test_the_script_refuses_without_an_nvidia_gpu(tmp_path: Path) -> None:
    # A PATH with the basic tools and no nvidia-smi: the script stops before installing.
    env = {**os.environ, "PATH": "/usr/bin:/bin", "GPU_VENV": str(tmp_path / "venv")}
    if Path("/usr/bin/nvidia-smi").exists():
        pytest.skip("an NVIDIA driver is installed here")
    r = subprocess.run(
        ["bash", str(REPO / "tools" / "gpu_bench.sh"), str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "no NVIDIA GPU" in r.stderr
    assert not (tmp_path / "venv").exists()
