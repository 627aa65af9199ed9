"""The work in a model, counted from its ONNX graph, and this CPU's fp32 peak.

Counted: Conv, ConvTranspose, Gemm and MatMul, as 2 x multiply-adds (the convention
the paper's and the exporter's figures use). Element-wise ops, pooling and
activations are left out: they are memory-bound and a few percent of the total here.

The peak is ``cores x clock x fp32 FLOP per cycle per core``, from what the CPU
reports: the widest vector FMA the flags show, times two FMA units (every x86 core
with AVX2 since Haswell / Zen 2 has two), times two for multiply and add.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

from grasprt.runtime.cpu import parse_cpuinfo


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Every tensor's shape we can know; a symbolic dimension counts as 1 (batch)."""
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    out: dict[str, list[int]] = {}
    for v in [*g.input, *g.output, *g.value_info]:
        t = v.type.tensor_type
        if t.HasField("shape"):
            out[v.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in t.shape.dim]
    for init in g.initializer:
        out[init.name] = list(init.dims)
    return out


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def node_flops(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    """FLOPs of one node (0 for ops not counted, or when a shape is unknown)."""
    op = node.op_type
    try:
        if op in ("Conv", "ConvTranspose", "QLinearConv", "ConvInteger"):
            w_name = node.input[3] if op == "QLinearConv" else node.input[1]
            w = shapes[w_name]
            if op == "ConvTranspose":
                # Each input pixel scatters into a kernel: the work follows the input.
                x = shapes[node.input[0]]
                return 2 * int(np.prod(x)) * int(np.prod(w[1:]))
            y = shapes[node.output[0]]
            # Out elements x (input channels per group x kernel area).
            return 2 * int(np.prod(y)) * int(np.prod(w[1:]))
        if op == "Gemm":
            a, y = shapes[node.input[0]], shapes[node.output[0]]
            k = a[0] if _attr(node, "transA", 0) else a[1]
            return 2 * int(np.prod(y)) * k
        if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
            a = shapes[node.input[0]]
            y = shapes[node.output[0]]
            return 2 * int(np.prod(y)) * a[-1]
    except (KeyError, IndexError):
        return 0
    return 0


def model_flops(model: onnx.ModelProto | bytes) -> int:
    """FLOPs for one run of ``model`` (batch 1)."""
    m = onnx.load_from_string(model) if isinstance(model, bytes) else model
    shapes = _shapes(m)
    return sum(node_flops(n, shapes) for n in m.graph.node)


@dataclass(frozen=True)
class CpuPeak:
    cores: int
    clock_ghz: float
    flop_per_cycle: int  # fp32, per core
    clock_source: str
    vector: str  # the widest FMA the flags show

    @property
    def gflops(self) -> float:
        return self.cores * self.clock_ghz * self.flop_per_cycle

    def describe(self) -> str:
        return (
            f"{self.cores} cores x {self.clock_ghz:.3f} GHz ({self.clock_source}) x "
            f"{self.flop_per_cycle} FLOP/cycle ({self.vector}) = {self.gflops:.1f} GFLOP/s fp32"
        )


def flop_per_cycle(flags: set[str]) -> tuple[int, str]:
    """fp32 FLOP per cycle per core: 2 FMA units x lanes x 2 (multiply and add)."""
    if "avx512f" in flags:
        return 2 * 16 * 2, "AVX-512 FMA"
    if "avx2" in flags and "fma" in flags:
        return 2 * 8 * 2, "AVX2 FMA"
    if "avx" in flags:
        # No FMA: one add and one multiply unit, 8 lanes each.
        return 2 * 8, "AVX (no FMA)"
    return 2 * 4, "SSE"


def cpu_peak(
    cpuinfo: str | None = None, max_freq_khz: str | None = None, cores: int | None = None
) -> CpuPeak:
    """This CPU's fp32 peak. The clock is the cpufreq maximum when the kernel exposes it
    (boost included), else /proc/cpuinfo's "cpu MHz" (the nominal clock in most VMs)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    if max_freq_khz is None:
        try:
            max_freq_khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        except OSError:
            max_freq_khz = ""
    flags, mhz, _ = parse_cpuinfo(cpuinfo)
    fpc, vector = flop_per_cycle(flags)
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    n = max(1, cores)
    if max_freq_khz.strip().isdigit():
        ghz, source = int(max_freq_khz) / 1e6, "cpufreq cpuinfo_max_freq"
    elif mhz:
        ghz, source = mhz / 1e3, "/proc/cpuinfo cpu MHz"
    else:
        ghz, source = 1.0, "unknown: assumed 1 GHz"
    return CpuPeak(cores=n, clock_ghz=ghz, flop_per_cycle=fpc, clock_source=source, vector=vector)
