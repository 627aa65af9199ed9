"""FLOPs counted from ONNX graphs, and the CPU peak from what the CPU reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import const, make_model, tensor
from onnx import TensorProto, helper

from grasprt.runtime.flops import cpu_peak, flop_per_cycle, model_flops

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = REPO / "models" / "placeholder"


def _conv_gemm_matmul_model():
    rng = np.random.default_rng(0)
    nodes = [
        # 3 -> 8 channels, 3x3, stride 2, pads 1: 32x32 -> 16x16.
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        # Grouped: 8 -> 8 in 4 groups of 2 input channels, 1x1.
        helper.make_node("Conv", ["c", "wg"], ["g"], group=4),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["h"], transB=1),
        helper.make_node("MatMul", ["h", "mm"], ["y"]),
    ]
    inits = [
        const("w", rng.normal(size=(8, 3, 3, 3))),
        const("wg", rng.normal(size=(8, 2, 1, 1))),
        const("fc", rng.normal(size=(10, 8 * 16 * 16))),
        const("fcb", np.zeros(10)),
        const("mm", rng.normal(size=(10, 4))),
    ]
    return make_model(
        "segmenter",
        nodes,
        [tensor("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [tensor("y", TensorProto.FLOAT, ["n", 4])],
        inits,
        metadata={},
    )


def test_counts_conv_grouped_conv_gemm_matmul_by_hand() -> None:
    conv = 2 * (8 * 16 * 16) * (3 * 3 * 3)
    grouped = 2 * (8 * 16 * 16) * (2 * 1 * 1)
    gemm = 2 * 10 * (8 * 16 * 16)
    matmul = 2 * 4 * 10
    assert model_flops(_conv_gemm_matmul_model()) == conv + grouped + gemm + matmul


@pytest.mark.skipif(not (PLACEHOLDER / "bundle.json").exists(), reason="no placeholder bundle")
def test_paper_segmenter_matches_the_exporters_formula() -> None:
    manifest = json.loads((PLACEHOLDER / "bundle.json").read_text())
    stated = manifest["provenance"]["segmenter"]["gflop_per_image"]
    counted = model_flops((PLACEHOLDER / "segmenter.onnx").read_bytes()) / 1e9
    assert counted == pytest.approx(stated, abs=5e-4)


CPUINFO_AVX2 = """processor\t: 0
model name\t: AMD EPYC
cpu MHz\t\t: 2445.406
flags\t\t: fpu sse sse2 avx fma avx2
"""


def test_peak_from_avx2_fma_flags_and_cpuinfo_clock() -> None:
    p = cpu_peak(cpuinfo=CPUINFO_AVX2, max_freq_khz="", cores=2)
    assert p.flop_per_cycle == 32 and p.vector == "AVX2 FMA"
    assert p.clock_ghz == pytest.approx(2.445406)
    assert p.gflops == pytest.approx(2 * 2.445406 * 32)
    assert "cpu MHz" in p.clock_source


def test_peak_prefers_cpufreq_maximum() -> None:
    p = cpu_peak(cpuinfo=CPUINFO_AVX2, max_freq_khz="3500000\n", cores=4)
    assert p.clock_ghz == pytest.approx(3.5)
    assert p.gflops == pytest.approx(4 * 3.5 * 32)
    assert "cpuinfo_max_freq" in p.clock_source


def test_flop_per_cycle_by_vector_width() -> None:
    assert flop_per_cycle({"avx512f", "avx2", "fma"})[0] == 64
    assert flop_per_cycle({"avx"})[0] == 16
    assert flop_per_cycle(set())[0] == 8
