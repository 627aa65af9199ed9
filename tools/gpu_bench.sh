#!/usr/bin/env bash
# Issue 18, item 5: on a machine with an NVIDIA GPU, time the CUDA and TensorRT
# execution providers (fp32 and fp16, host buffers and I/O binding) against the CPU
# in one run, and write the bench JSON.
#
#   tools/gpu_bench.sh [OUT_DIR]        (default: the current directory)
#
# It makes its own environment (.venv-gpu; GPU_VENV=... to choose), because
# onnxruntime-gpu and the CPU onnxruntime both install the `onnxruntime` module: the
# project is installed, then the CPU wheel is swapped for the GPU one (the `gpu` extra).
# Wheels come from PyPI, or from a local wheel folder with PIP_FIND_LINKS / --no-index.
# Exit 2, one line, when there is no NVIDIA GPU; nothing is installed then.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-.}
VENV=${GPU_VENV:-.venv-gpu}
PY=${PYTHON:-python3}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_bench: no NVIDIA GPU here (nvidia-smi missing or it sees no device)" >&2
    exit 2
fi
if [ ! -d "$OUT_DIR" ]; then
    echo "gpu_bench: $OUT_DIR: no such folder" >&2
    exit 2
fi
nvidia-smi -L

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[openvino,gpu]'
# Both wheels wrote onnxruntime/: take both out, put the GPU one back alone (its
# dependencies, and the CUDA/cuDNN/TensorRT libraries of the extra, stay installed).
"$VENV/bin/python" -m pip uninstall -q -y onnxruntime onnxruntime-gpu
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall 'onnxruntime-gpu>=1.20'
# The TensorRT provider loads libnvinfer from the tensorrt wheel's own folder.
TRT_LIBS=$("$VENV/bin/python" -c 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))' 2>/dev/null || true)
export LD_LIBRARY_PATH="${TRT_LIBS:+$TRT_LIBS:}${LD_LIBRARY_PATH:-}"
"$VENV/bin/python" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())'

# The GPU block, the CPU pick beside it (--tune), and a short loop: one JSON.
"$VENV/bin/grasprt" bench --gpu --tune --cycles 300 --model-reps 200 \
    --json "$OUT_DIR/bench-gpu.json"
echo "gpu_bench: wrote $OUT_DIR/bench-gpu.json"
