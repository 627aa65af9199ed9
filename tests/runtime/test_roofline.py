"""The roofline: each precision's peak from the CPU's flags, the bytes one run moves
counted from the graph, and the bound judged against an achieved time."""

from __future__ import annotations

import numpy as np
import pytest
from bundle_factory import const, make_model
from onnx import TensorProto, helper

from grasprt.runtime.cpu import cpu_info, parse_cpuinfo
from grasprt.runtime.roofline import Roofline, copy_bandwidth, model_bytes, peaks, per_cycle

SPR = "model name\t: Intel(R) Xeon(R) Platinum 8480+\ncpu MHz\t\t: 2000.000\nflags\t\t: {}\n"
AMX_FLAGS = "fpu sse avx avx2 fma avx512f avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_int8"
ZEN2_FLAGS = "fpu sse avx avx2 fma"


def cpu(flags: str, cores: int = 2):
    return cpu_info(SPR.format(flags), cores=cores)


def test_cpuinfo_names_the_model_and_the_isa_in_a_fixed_order() -> None:
    flags, mhz, model = parse_cpuinfo(SPR.format(AMX_FLAGS))
    assert {"amx_bf16", "avx512f"} <= flags
    assert model == "Intel(R) Xeon(R) Platinum 8480+" and mhz == 2000.0
    c = cpu(AMX_FLAGS)
    assert c.isa == [
        "amx_bf16", "amx_int8", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx512f",
        "avx2", "fma",
    ]
    assert "Platinum 8480+" in c.describe()


def test_each_precision_takes_the_widest_unit_the_flags_show() -> None:
    amx, zen = cpu(AMX_FLAGS), cpu(ZEN2_FLAGS)
    assert per_cycle(amx, "fp32")[0] == 64  # 16 lanes x 2 FMA units x 2
    assert per_cycle(amx, "bf16") == (1024, "AMX-BF16 tiles")
    assert per_cycle(amx, "int8") == (2048, "AMX-INT8 tiles")
    assert per_cycle(amx, "fp16")[0] == 128  # AVX512-FP16, no AMX-FP16 flag
    assert per_cycle(cpu("avx2 fma avx512f avx512_bf16"), "bf16")[0] == 128
    assert per_cycle(cpu("avx2 fma avx_vnni"), "int8")[0] == 128
    # Without native units the reduced precision is emulated: the fp32 peak, said so.
    n, unit = per_cycle(zen, "bf16")
    assert n == 32 and unit.startswith("no native bf16")
    assert per_cycle(zen, "int8")[0] == 43


def test_peaks_are_cores_times_clock_times_per_cycle() -> None:
    p = peaks(cpu(AMX_FLAGS), cores=2, max_freq_khz="")
    assert p["fp32"]["gflops"] == pytest.approx(2 * 2.0 * 64)
    assert p["bf16"]["gflops"] == pytest.approx(2 * 2.0 * 1024)
    assert p["int8"]["gflops"] == pytest.approx(2 * 2.0 * 2048)
    assert "/proc/cpuinfo" in p["fp32"]["describe"]
    assert peaks(cpu(AMX_FLAGS), cores=1, max_freq_khz="3000000")["fp32"]["gflops"] == 192.0


def _conv_graph():
    # image 1x3x8x8 -> conv (4 out, 3x3, pad 1) -> relu -> out 1x4x8x8
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    return make_model("g", nodes, [x], [y], [const("w", np.ones((4, 3, 3, 3)))])


def test_bytes_are_weights_activations_twice_and_io() -> None:
    b = model_bytes(_conv_graph())
    assert b["weights"] == 4 * 3 * 3 * 3 * 4
    assert b["activations"] == 2 * (1 * 4 * 8 * 8 * 4)  # "c", written and read; "y" is io
    assert b["io"] == (3 * 8 * 8 + 4 * 8 * 8) * 4
    assert b["total"] == b["weights"] + b["activations"] + b["io"]
    half = model_bytes(_conv_graph(), "bf16")
    assert half["total"] * 2 == b["total"]  # every tensor here is a float


def test_a_quantised_tensor_counts_once_at_one_byte() -> None:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        helper.make_node("Relu", ["dq"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 100])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 100])
    s = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    z = helper.make_tensor("z", TensorProto.UINT8, [], [0])
    m = make_model("q", nodes, [x], [y], [s, z])
    b = model_bytes(m)
    assert b["activations"] == 2 * 100  # dq's 100 values at 1 byte, q not again


def test_an_int8_engine_writes_only_the_quantised_tensors() -> None:
    # x -> Q -> DQ -> Conv -> Q -> DQ -> Relu -> MaxPool -> Q -> DQ -> y: an int8 engine
    # writes the two inner quantised tensors (1 byte each) and never the float ones
    # between them (the conv's output, the Relu's, the MaxPool's).
    s = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    z = helper.make_tensor("z", TensorProto.UINT8, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("Conv", ["xd", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"]),
        helper.make_node("Relu", ["cd"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("QuantizeLinear", ["p", "s", "z"], ["pq"]),
        helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])
    m = make_model("qdq", nodes, [x], [y], [const("w", np.ones((4, 3, 3, 3))), s, z])
    quantised = 3 * 8 * 8 + 4 * 8 * 8  # xd, cd at 1 byte
    assert model_bytes(m, "int8")["activations"] == 2 * quantised
    # Counted as a float engine runs the same graph: c, r and p at 4 bytes besides.
    floats = 4 * (4 * 8 * 8 + 4 * 8 * 8 + 4 * 4 * 4)
    assert model_bytes(m)["activations"] == 2 * (quantised + floats)


def test_the_bound_is_the_slower_of_compute_and_memory() -> None:
    r = Roofline("fp32", flops=2e9, bytes=1e8, peak_gflops=1000.0, peak_unit="x",
                 bandwidth_gbs=10.0, cache_gbs=100.0)
    b = r.bound_ms()
    assert b["compute"] == pytest.approx(2.0) and b["memory"] == pytest.approx(10.0)
    assert b["bound"] == pytest.approx(10.0) and b["bound_from_cache"] == pytest.approx(2.0)
    j = r.judge(achieved_ms=20.0)
    assert j["limited_by"] == "memory"
    assert j["fraction_of_bound"] == pytest.approx(0.5)
    assert j["attainable_gflops"] == pytest.approx(20 * 10.0)  # intensity 20 FLOP/byte


def test_copy_bandwidth_is_measured() -> None:
    assert copy_bandwidth(1 << 20, repeats=1) > 0
