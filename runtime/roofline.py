"""A roofline for each precision: compute peaks from the CPU's flags and clock, a
memory bound from the bytes one inference moves against a measured bandwidth.

Compute peak per core per cycle, by precision (the widest unit the flags show; an
engine that does not use that unit reads below it):

- fp32: vector FMA lanes x 2 FMA units x 2 (multiply and add). Two FMA units per core
  is an assumption: every x86 core with AVX2 since Haswell / Zen 2 has two 256-bit
  ones, and server Xeons with AVX-512 (Skylake-SP Gold/Platinum onward) two 512-bit
  ones; some Xeon Silver/Bronze parts have one, and then the peak reads 2x high.
- bf16: AMX-BF16 (``amx_bf16``): a TDPBF16PS tile op, 16x16x32 multiply-adds every 16
  cycles = 1024 FLOP/cycle; else AVX512-BF16 (VDPBF16PS: 2 products per fp32 lane,
  2 units) = 128; else no native bf16 (the engine emulates it): the fp32 peak.
- fp16: AMX-FP16 = 1024; AVX512-FP16 (32 half lanes x 2 units x 2) = 128; else fp32's.
- int8: AMX-INT8 (TDPBUSD, 16x16x64 every 16 cycles) = 2048 ops/cycle; AVX512-VNNI
  (VPDPBUSD: 4 products per 32-bit lane, 16 lanes, 2 units, x2) = 256; AVX-VNNI (256
  bit) = 128; without VNNI the u8 x s8 product takes three instructions
  (vpmaddubsw, vpmaddwd, vpaddd): AVX-512 ~85, AVX2 ~43.

Memory: bytes per inference = the weights read once + every activation written once
and read once + the graph's inputs and outputs, at the precision that ran (a bf16/fp16
hint halves float tensors; in a QDQ graph a quantised tensor counts at 1 byte, and the
float tensors an int8 engine never writes count not at all: a convolution's output that
only a QuantizeLinear reads, and the Relu/MaxPool chain between a DequantizeLinear and
the next QuantizeLinear, which it runs on the quantised values). Against a bandwidth
measured here with a numpy copy larger than the last-level cache (read + write
counted, write-allocate not: a low estimate). This model's tensors fit in L2/L3, so
the DRAM bound is a floor on time, not the limit it meets; the cache bandwidth (a copy
that fits in L2) is reported beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, shape_inference

from grasprt.runtime.cpu import CpuInfo

_ITEM = {
    TensorProto.FLOAT: 4,
    TensorProto.FLOAT16: 2,
    TensorProto.BFLOAT16: 2,
    TensorProto.DOUBLE: 8,
    TensorProto.INT8: 1,
    TensorProto.UINT8: 1,
    TensorProto.INT16: 2,
    TensorProto.INT32: 4,
    TensorProto.INT64: 8,
    TensorProto.BOOL: 1,
}
_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)


def fp32_per_cycle(cpu: CpuInfo) -> tuple[int, str]:
    if cpu.has("avx512f"):
        return 2 * 16 * 2, "AVX-512 FMA, 2 units"
    if cpu.has("avx2") and cpu.has("fma"):
        return 2 * 8 * 2, "AVX2 FMA, 2 units"
    if cpu.has("avx"):
        return 2 * 8, "AVX (no FMA)"
    return 2 * 4, "SSE"


def per_cycle(cpu: CpuInfo, precision: str) -> tuple[int, str]:
    """(FLOP or int8 op per cycle per core, the unit it assumes) for ``precision``."""
    fp32 = fp32_per_cycle(cpu)
    if precision == "bf16":
        if cpu.has("amx_bf16"):
            return 1024, "AMX-BF16 tiles"
        if cpu.has("avx512_bf16"):
            return 128, "AVX512-BF16 dot products, 2 units"
        return fp32[0], f"no native bf16: {fp32[1]}"
    if precision == "fp16":
        if cpu.has("amx_fp16"):
            return 1024, "AMX-FP16 tiles"
        if cpu.has("avx512_fp16"):
            return 128, "AVX512-FP16 FMA, 2 units"
        return fp32[0], f"no native fp16: {fp32[1]}"
    if precision == "int8":
        if cpu.has("amx_int8"):
            return 2048, "AMX-INT8 tiles"
        if cpu.has("avx512_vnni"):
            return 256, "AVX512-VNNI, 2 units"
        if cpu.has("avx_vnni"):
            return 128, "AVX-VNNI (256-bit), 2 units"
        if cpu.has("avx512f"):
            return 85, "AVX-512 without VNNI (3 instructions per u8 x s8 step)"
        return 43, "AVX2 without VNNI (3 instructions per u8 x s8 step)"
    return fp32


def clock_ghz(cpu: CpuInfo, max_freq_khz: str | None = None) -> tuple[float, str]:
    if max_freq_khz is None:
        try:
            max_freq_khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        except OSError:
            max_freq_khz = ""
    if max_freq_khz.strip().isdigit():
        return int(max_freq_khz) / 1e6, "cpufreq cpuinfo_max_freq"
    if cpu.mhz:
        return cpu.mhz / 1e3, "/proc/cpuinfo cpu MHz"
    return 1.0, "unknown: assumed 1 GHz"


def peaks(cpu: CpuInfo, cores: int, max_freq_khz: str | None = None) -> dict[str, Any]:
    """Each precision's compute peak in GFLOP/s (GOP/s for int8) on ``cores`` cores."""
    ghz, source = clock_ghz(cpu, max_freq_khz)
    out: dict[str, Any] = {}
    for prec in ("fp32", "bf16", "fp16", "int8"):
        n, unit = per_cycle(cpu, prec)
        out[prec] = {
            "gflops": cores * ghz * n,
            "per_cycle_per_core": n,
            "unit": unit,
            "describe": f"{cores} cores x {ghz:.3f} GHz ({source}) x {n} ({unit})",
        }
    return out


def _tensor_types(m: onnx.ModelProto) -> dict[str, tuple[int, list[int]]]:
    g = shape_inference.infer_shapes(m).graph
    out: dict[str, tuple[int, list[int]]] = {}
    for v in [*g.input, *g.output, *g.value_info]:
        t = v.type.tensor_type
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else 1 for d in t.shape.dim]
            out[v.name] = (t.elem_type, dims)
    return out


def model_bytes(model: onnx.ModelProto | bytes, precision: str = "fp32") -> dict[str, int]:
    """Bytes one run moves: ``weights``, ``activations`` (written + read), ``io``."""
    m = onnx.load_from_string(model) if isinstance(model, bytes) else model
    half = precision in ("bf16", "fp16")

    def size(elem: int, dims: list[int]) -> int:
        item = 2 if half and elem in _FLOATS else _ITEM.get(elem, 4)
        return item * int(np.prod(dims)) if dims else item

    inits = {i.name: i for i in m.graph.initializer}
    weights = sum(size(i.data_type, list(i.dims)) for i in inits.values())
    types = _tensor_types(m)
    io_names = {v.name for v in [*m.graph.input, *m.graph.output]}
    unwritten = _fused_into_quantized(m) if precision == "int8" else set()
    acts = 0
    for node in m.graph.node:
        if node.op_type == "QuantizeLinear":
            continue  # its 1-byte output is counted as the DequantizeLinear's
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            continue  # a weight: counted once as the initializer
        for name in node.output:
            if name in io_names or name not in types or name in unwritten:
                continue
            elem, dims = types[name]
            n = size(elem, dims) if node.op_type != "DequantizeLinear" else int(np.prod(dims))
            acts += 2 * n
    io = sum(size(*types[n]) for n in io_names if n in types)
    return {"weights": weights, "activations": acts, "io": io, "total": weights + acts + io}


# Ops an int8 engine runs on the quantised values themselves (monotonic, no arithmetic
# that needs the float scale).
_ON_QUANTIZED = ("Relu", "MaxPool")


def _fused_into_quantized(m: onnx.ModelProto) -> set[str]:
    """Float tensors of a QDQ graph that an int8 engine fuses away: every reader is a
    QuantizeLinear, or a Relu/MaxPool whose outputs are fused away themselves. A
    DequantizeLinear's output stands for its quantised input and is always counted."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in m.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    fused: set[str] = set()
    for node in reversed(m.graph.node):  # ONNX nodes are in topological order
        if node.op_type == "DequantizeLinear":
            continue
        for name in node.output:
            nodes = readers.get(name, [])
            if nodes and all(
                r.op_type == "QuantizeLinear"
                or (r.op_type in _ON_QUANTIZED and all(o in fused for o in r.output))
                for r in nodes
            ):
                fused.add(name)
    return fused


def copy_bandwidth(nbytes: int, repeats: int = 3) -> float:
    """GB/s of ``np.copyto`` over ``nbytes`` (read + write counted), best of ``repeats``."""
    n = max(1, nbytes // 8)
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch every page first
    best = float("inf")
    loops = max(1, int(64e6 // max(nbytes, 1)))  # small copies repeated to be timeable
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(loops):
            np.copyto(dst, src)
        best = min(best, (time.perf_counter() - t) / loops)
    return 2 * src.nbytes / best / 1e9


def measured_bandwidth(llc_bytes: int | None = None) -> dict[str, Any]:
    """DRAM (a copy twice the last-level cache, 256..512 MiB) and L2 (256 KiB)."""
    llc = llc_bytes if llc_bytes is not None else _llc_bytes()
    big = int(min(max(2 * llc, 256 << 20), 512 << 20))
    return {
        "dram_gbs": copy_bandwidth(big),
        "dram_copy_bytes": big,
        "cache_gbs": copy_bandwidth(256 << 10, repeats=5),
        "method": "numpy copyto, best of runs, 2 x bytes / time (write-allocate not counted)",
    }


def _llc_bytes() -> int:
    best = 0
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in base.glob("index*"):
        try:
            text = (idx / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text[:-1] if text[-1:].isalpha() else text
        if digits.isdigit():
            best = max(best, int(digits) * mult)
    return best or (32 << 20)


@dataclass(frozen=True)
class Roofline:
    precision: str
    flops: float  # per inference (int8: ops)
    bytes: int
    peak_gflops: float
    peak_unit: str
    bandwidth_gbs: float  # DRAM
    cache_gbs: float | None = None  # L2, for the bound when every tensor stays in cache

    def bound_ms(self) -> dict[str, float]:
        compute = self.flops / (self.peak_gflops * 1e9) * 1e3
        memory = self.bytes / (self.bandwidth_gbs * 1e9) * 1e3
        out = {"compute": compute, "memory": memory, "bound": max(compute, memory)}
        if self.cache_gbs:
            cached = self.bytes / (self.cache_gbs * 1e9) * 1e3
            out.update({"memory_from_cache": cached, "bound_from_cache": max(compute, cached)})
        return out

    def judge(self, achieved_ms: float) -> dict[str, Any]:
        b = self.bound_ms()
        ai = self.flops / self.bytes if self.bytes else 0.0
        attainable = min(self.peak_gflops, ai * self.bandwidth_gbs)
        return {
            "precision": self.precision,
            "peak_gflops": self.peak_gflops,
            "peak_unit": self.peak_unit,
            "bytes_per_run": self.bytes,
            "arithmetic_intensity": ai,
            "bandwidth_gbs": self.bandwidth_gbs,
            "attainable_gflops": attainable,
            "limited_by": "compute" if b["compute"] >= b["memory"] else "memory",
            "bound_ms": b,
            "achieved_ms": achieved_ms,
            "achieved_gflops": self.flops / (achieved_ms / 1e3) / 1e9 if achieved_ms else 0.0,
            "fraction_of_bound": b["bound"] / achieved_ms if achieved_ms else 0.0,
        }
