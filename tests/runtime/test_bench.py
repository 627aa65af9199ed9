"""`grasprt bench` runs the real loop and reports consistent figures.

No test here asserts how long anything takes: they check that the bench runs, that
its keys are there, that stage times tile the cycle, that busy neighbours are always
reaped, and that bad input is one line and exit 2.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from bundle_factory import (
    action_output,
    color_segmenter,
    const,
    image_input,
    make_model,
    mask_value,
    ramp_controller,
    state_input,
    write_bundle,
)
from onnx import TensorProto, helper

from grasprt.bench_cmd import _eager_pair
from grasprt.bundle import load_bundle
from grasprt.config import InferenceSettings, RunConfig, build_run_config
from grasprt.drivers.registry import build_drivers, check_drivers, robot_settings_types
from grasprt.drivers.sim.views import held_out_views
from grasprt.errors import ConfigError
from grasprt.profiles import SAWYER
from grasprt.runtime import realtime
from grasprt.runtime.bench import BenchParts, json_ready, run_bench, tune
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.stress import stress

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = REPO / "models" / "placeholder"
TIMED = ("p50", "p90", "p99", "p999", "max")
PARTS = BenchParts(
    make_drivers=build_drivers, check=check_drivers, views=held_out_views, eager=_eager_pair
)


def bench_config(file: Path | None = None, **flags: object) -> RunConfig:
    """The configuration `grasprt bench` builds, from flags named as config keys."""
    return build_run_config(file, flags, robots=robot_settings_types())


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(
        tmp_path_factory.mktemp("bench") / "b",
        color_segmenter(),
        ramp_controller(list(SAWYER.neutral)),
    )


# A segmenter and a controller with every op the FLOP count counts (Conv, Gemm, MatMul),
# small enough to run at the loop's rate on 2 cores. Their work, from the layer shapes:
#   conv1: 3 -> 4 channels, 4x4 kernel, stride 4: out 4x100x100, each 3*4*4 MACs
#   conv2: 4 -> 1 channel, 3x3 kernel, pad 1:     out 1x100x100, each 4*3*3 MACs
#   fc1 (Gemm, transB): mask 10000 -> 16:          16 outputs, each 10000 MACs
#   fc2 (MatMul): [fc1, state] 24 -> 8:             8 outputs, each 24 MACs
# and a FLOP is counted as 2 per multiply-add.
SEG_FLOPS = 2 * (4 * 100 * 100 * 3 * 4 * 4 + 1 * 100 * 100 * 4 * 3 * 3)
CTL_FLOPS = 2 * (16 * 10_000 + 8 * 24)


def conv_segmenter() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Cast", ["image"], ["rgb"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["rgb"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["c1"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["mask"]),
    ]
    consts = [
        const("w1", rng.normal(0.0, 0.01, (4, 3, 4, 4))),
        const("b1", np.zeros(4)),
        const("w2", rng.normal(0.0, 0.1, (1, 4, 3, 3))),
    ]
    return make_model("segmenter", nodes, [image_input()], [mask_value()], consts)


def gemm_controller() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Flatten", ["mask"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w1"], ["h"], transB=1),
        helper.make_node("Concat", ["h", "state"], ["hs"], axis=1),
        helper.make_node("MatMul", ["hs", "w2"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["action"]),
    ]
    # fc2's weights are zero: the arm stays put, so 60 cycles never end in a fault.
    consts = [const("w1", rng.normal(0.0, 0.01, (16, 10_000))), const("w2", np.zeros((24, 8)))]
    return make_model("controller", nodes, [mask_value(), state_input()], [action_output()], consts)


@pytest.fixture(scope="module")
def conv_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(
        tmp_path_factory.mktemp("bench_conv") / "b", conv_segmenter(), gemm_controller()
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _check_percentiles(d: dict) -> None:
    assert set(TIMED) <= set(d)
    values = [d[k] for k in TIMED]
    assert all(np.isfinite(values)) and values == sorted(values)


@pytest.mark.parametrize("fused", [False, True])
def test_bench_fast_loop_stage_times_add_up_to_the_cycle(
    conv_bundle_dir: Path, fused: bool
) -> None:
    cfg = bench_config(
        bundle=str(conv_bundle_dir),
        clock="sim",
        sched="normal",
        **{"bench.cycles": 60, "bench.model_reps": 5},
        **{"inference.intra_op_threads": 1, "inference.fused": fused},
    )
    r = run_bench(cfg, PARTS)
    assert r["cycles"] == 60 and r["overruns"] == 0 and not r["faults"]
    assert r["fused"] is fused
    for key in ("cycle_ms", "lateness_ms"):
        _check_percentiles(r[key])
    models = {"segmenter+controller"} if fused else {"segmenter", "threshold", "controller"}
    assert set(r["stages"]) == {"frame_wait", "state_read", "model_view", *models} | {
        "perception",
        "limiter",
        "command",
        "record",
    }
    for st in r["stages"].values():
        _check_percentiles(st)
    assert r["models_only_ms"]["sum"] == pytest.approx(
        r["models_only_ms"]["segmenter"] + r["models_only_ms"]["controller"]
    )
    assert ("fused" in r["models_only_ms"]) is fused
    # Cycle by cycle: the stages tile the cycle; what is left is the timer's own marks.
    run = r["_runs"]["unloaded"]
    ok = np.isfinite(run.cycle_ms)
    sums = np.nansum(run.stage_ms[ok], axis=1)
    gap = run.cycle_ms[ok] - sums
    assert np.all(gap >= 0)
    # Untimed work would show in every cycle; a cycle the OS preempted between two marks
    # shows alone (it failed CI so, once in 60 cycles): allow two such of 60.
    assert np.count_nonzero(gap > 0.05 * run.cycle_ms[ok] + 0.5) <= 2
    # The work per cycle is the count worked out from the layer shapes, fused or not.
    assert r["gflops_by_model"] == {"segmenter": SEG_FLOPS / 1e9, "controller": CTL_FLOPS / 1e9}
    assert r["gflops_per_cycle"] == pytest.approx((SEG_FLOPS + CTL_FLOPS) / 1e9, rel=1e-12)
    assert r["peak_gflops"] > 0
    assert r["achieved_gflops"] == pytest.approx(
        r["gflops_per_cycle"] / (r["models_only_ms"]["sum"] / 1e3)
    )
    json.dumps(json_ready(r))  # everything reported is JSON


def test_bench_real_time_with_stress_reaps_its_neighbours(bundle_dir: Path) -> None:
    cfg = bench_config(
        bundle=str(bundle_dir),
        sched="normal",
        **{"bench.cycles": 15, "bench.rate_hz": 50.0, "bench.model_reps": 5, "bench.stress": 1},
        **{"inference.intra_op_threads": 1},
    )
    r = run_bench(cfg, PARTS)
    assert r["rate_hz"] == 50.0 and r["max_rate"] is False
    # A loaded machine may overrun 50 Hz and stop the episode early (a fault, reported):
    # the structure is checked here, not the timing.
    assert 1 <= r["stress"]["cycles"] <= 15
    if r["stress"]["cycles"] < 15:
        assert r["stress"]["faults"]
    assert r["stress"]["processes"] == 1 and r["stress"]["p99_ratio"] > 0
    assert r["max_rate_hz"] > 0
    assert "stress_cycle_p99_ratio" in r["targets"]


def test_stress_processes_are_killed_even_after_an_error() -> None:
    seen: list[int] = []
    with pytest.raises(RuntimeError), stress(2) as pids:
        seen = list(pids)
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        raise RuntimeError("the bench failed mid-run")
    assert seen and not any(_alive(p) for p in seen)


def test_realtime_applies_or_degrades_with_a_note_and_undoes() -> None:
    before = os.sched_getaffinity(0)
    policy = os.sched_getscheduler(0)
    st = realtime.apply(cpus={sorted(before)[-1]}, fifo_priority=10, lock_memory=False)
    try:
        # Each request is either applied or explained, never silently dropped.
        assert len(st.applied) + len(st.notes) == 2
        assert all("\n" not in n for n in st.notes)
    finally:
        st.undo()
    assert os.sched_getaffinity(0) == before
    assert os.sched_getscheduler(0) == policy


def test_wake_latency_request_is_written_held_and_withdrawn(tmp_path: Path) -> None:
    # A plain file stands in for the kernel's device to see the bytes: PM QoS reads a
    # native int32 and holds the request while the file stays open.
    target = tmp_path / "cpu_dma_latency"
    target.write_bytes(b"")
    st = realtime.apply(wake_latency_us=0, latency_path=str(target))
    assert st.applied == [f"CPU wake latency 0 us ({target})"] and not st.notes
    assert target.read_bytes() == struct.pack("i", 0)
    fd = st._latency_fd
    assert fd is not None
    st.undo()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed: the request is withdrawn
    missing = realtime.apply(wake_latency_us=0, latency_path=str(tmp_path / "no" / "dev"))
    assert not missing.applied and len(missing.notes) == 1 and "\n" not in missing.notes[0]
    assert "idle cores may wake late" in missing.notes[0]


def test_the_loops_priorities_run_opencv_on_one_thread_and_put_its_count_back() -> None:
    import cv2

    cv2.setNumThreads(2)
    try:
        prio = realtime.LoopPriorities(True)
        prio.before_sessions()
        try:
            assert cv2.getNumThreads() == realtime.OPENCV_THREADS == 1
            assert "OpenCV threads 2 -> 1" in prio.summary()["applied"]
        finally:
            prio.close()
        assert cv2.getNumThreads() == 2
        # Not enabled (--sched normal, the simulator's clock): OpenCV's own default.
        off = realtime.LoopPriorities(False)
        off.before_sessions()
        assert cv2.getNumThreads() == 2
        off.close()
    finally:
        cv2.setNumThreads(-1)


def _kernel_latency() -> int:
    fd = os.open(realtime.CPU_LATENCY_PATH, os.O_RDONLY)
    try:
        return struct.unpack("i", os.read(fd, 4))[0]
    finally:
        os.close(fd)


@pytest.mark.skipif(
    not os.access(realtime.CPU_LATENCY_PATH, os.W_OK),
    reason="no writable /dev/cpu_dma_latency here (not Linux, or not root)",
)
def test_wake_latency_request_reaches_the_kernel_and_is_withdrawn() -> None:
    before = _kernel_latency()
    prio = realtime.LoopPriorities(True)
    prio.before_sessions()
    try:
        # The kernel's aggregate is the smallest request held: ours, 0 us.
        assert _kernel_latency() == realtime.WAKE_LATENCY_US
        assert any(a.startswith("CPU wake latency") for a in prio.summary()["applied"])
    finally:
        prio.close()
    assert _kernel_latency() == before


@pytest.mark.slow
def test_tune_gates_times_checks_in_closed_loop_and_releases_what_it_built(
    bundle_dir: Path,
) -> None:
    from grasprt.bench_cmd import _closed_loop
    from grasprt.runtime.cpu import cpu_info

    cfg = bench_config(bundle=str(bundle_dir), sched="normal")
    checked: list[InferenceSettings] = []

    def check(p: Pipeline, n: int) -> list[bool]:
        checked.append(p.cfg)
        return _closed_loop(cfg, p, n)

    t = tune(
        load_bundle(bundle_dir), held_out_views, reps=3, thread_options=(1,),
        closed_loop=check, attempts=2,
    )
    s = t.summary()
    ort_settings = [k for k in s["pipeline_p50_ms"] if k.startswith("cpu ")]
    assert len(ort_settings) == 8  # spin x opt level x fused, one thread count
    assert all(v > 0 for v in s["pipeline_p50_ms"].values())
    assert s["chosen"]["threads"] == 1 and s["reason"]
    kinds = {c["precision"] for c in s["precision_candidates"]}
    assert {"int8", "fp16", "bf16"} <= kinds
    # A reduced precision is chosen only if it passed the gate.
    chosen = [c for c in s["precision_candidates"] if c["candidate"] == s["chosen_candidate"]]
    assert len(chosen) == 1 and chosen[0]["admitted"]
    for c in s["precision_candidates"]:
        if c["precision"] != "fp32" and c["offered"]:
            assert "iou" in c  # gated before it was timed
        if not c["admitted"]:
            assert c["pipeline_p50_ms"] is None  # never timed, never picked
    cl = s["closed_loop"]
    assert cl["checked"] and cl["attempts"] == 2 and cl["chosen"] == s["chosen_candidate"]
    # The reference (ONNX Runtime fp32) runs the attempts first; the pick the same ones.
    assert (checked[0].provider, checked[0].precision) == ("cpu", "fp32")
    assert 0.0 <= cl["reference_success"] <= 1.0
    assert s["chosen_candidate"] in s["reason"] and "simulated attempts" in s["reason"]
    # OpenVINO's hints are offered exactly where the CPU's flags show the units.
    cpu = cpu_info()
    bf16 = next(c for c in s["precision_candidates"] if c["candidate"] == "openvino bf16")
    if not cpu.has("amx_bf16", "avx512_bf16"):
        assert not bf16["offered"]
    assert s["cpu"] == cpu.model and s["isa"] == cpu.isa
    # Every session and compiled model tuning built is gone: at most the one thread
    # OpenVINO's runtime keeps for the process once it has been loaded at all.
    th = s["threads_alive"]
    assert th["after_release"] <= th["before"] + 1


@pytest.mark.slow
@pytest.mark.skipif(not (PLACEHOLDER / "bundle.json").exists(), reason="no placeholder bundle")
def test_compare_torch_uses_the_same_weights() -> None:
    pytest.importorskip("torch")
    cfg = bench_config(
        bundle=str(PLACEHOLDER),
        clock="sim",
        sched="normal",
        **{"bench.cycles": 3, "bench.model_reps": 5, "bench.record": False},
        **{"bench.compare_torch": True},
    )
    r = run_bench(cfg, PARTS)
    assert r["torch_parity_max_abs_err"] < 1e-4
    for key in ("torch_ms", "speedup_vs_torch"):
        assert set(r[key]) == {"segmenter", "controller", "sum"}
    assert r["speedup_vs_torch"]["sum"] == pytest.approx(
        r["torch_ms"]["sum"] / r["onnx_ms_interleaved"]["sum"]
    )


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_bench_cli_writes_json_and_plot(bundle_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    proc = _cli(
        "--bundle", str(bundle_dir), "--cycles", "20", "--clock", "sim", "--threads", "1",
        "--model-reps", "5", "--json", str(out), "--plot", str(png),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    for key in (
        "cycle_ms", "lateness_ms", "stages", "overruns", "cycles", "models_only_ms",
        "gflops_per_cycle", "achieved_gflops", "peak_gflops", "provider", "threads",
        "precision",
    ):  # fmt: skip
        assert key in r, key
    assert r["threads"] == 1 and r["provider"] == "cpu" and r["precision"] == "fp32"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cycle" in proc.stdout and "segmenter" in proc.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--rate", "0"), "rate_hz"),
        (("--rate", "10", "--clock", "sim"), "exclude"),
        (("--cycles", "0"), "cycles"),
        (("--stress", "-1"), "stress"),
        (("--max",), "--clock sim"),
        (("--clock", "sim", "--camera", "opencv:0"), "simulated camera"),
        (("--threads", "0"), "threads"),
        (("--json", "/no/such/folder/b.json"), "--json"),
    ],
)
def test_bench_bad_input_is_one_line_exit_2(args: tuple[str, ...], words: str) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr


def test_bench_takes_the_config_file_floor_to_its_limiter(bundle_dir: Path, tmp_path: Path) -> None:
    # `grasprt bench --config` once built its settings by hand and never saw the file.
    toml = tmp_path / "arm.toml"
    toml.write_text("[limiter]\nfloor_z = 0.123\nfloor_clearance = 0.004\n[bench]\ncycles = 4\n")
    out = tmp_path / "b.json"
    proc = _cli(
        "--bundle", str(bundle_dir), "--config", str(toml), "--clock", "sim", "--threads", "1",
        "--model-reps", "5", "--no-recording", "--json", str(out), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["limiter_floor_m"] == pytest.approx(0.127)
    assert r["cycles"] == 4


def test_openvino_backend_runs_the_same_graphs(bundle_dir: Path) -> None:
    pytest.importorskip("openvino")
    from grasprt.drivers.sim.views import held_out_views as sim_frames

    b = load_bundle(bundle_dir)
    ort_p = Pipeline(b, InferenceSettings(intra_op_threads=1))
    ov_p = Pipeline(b, InferenceSettings(provider="openvino", intra_op_threads=1))
    q = np.asarray(SAWYER.neutral, dtype=np.float32) + 0.1
    for frame in sim_frames(b, [21, 22]):
        for p in (ort_p, ov_p):
            p.set_state(q, 0.0)
            p.segment(frame)
            p.threshold()
            p.control(q, 0.0)
        np.testing.assert_allclose(ov_p.prob, ort_p.prob, atol=1e-5)
        np.testing.assert_array_equal(ov_p.mask, ort_p.mask)
        np.testing.assert_allclose(ov_p.action, ort_p.action, atol=1e-5)
    assert ov_p.fused_runs == 2


def test_openvino_refuses_a_precision_the_cpu_lacks(bundle_dir: Path) -> None:
    pytest.importorskip("openvino")
    from grasprt.runtime import openvino_backend

    b = load_bundle(bundle_dir)
    cfg = InferenceSettings(provider="openvino", precision="bf16", intra_op_threads=1)
    if "BF16" in openvino_backend.capabilities():
        # Natively supported: the IoU gate decides, and its verdict is kept.
        p = Pipeline(b, cfg, views=held_out_views)
        assert p.gate is not None and p.gate.passed
    else:
        with pytest.raises(ConfigError, match="BF16"):
            Pipeline(b, cfg, views=held_out_views)


def test_loop_priorities_rank_threads_and_restore_everything() -> None:
    import threading

    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    affinity = os.sched_getaffinity(0)
    prio = realtime.LoopPriorities(True, realtime.loop_cpu(1))
    seen: dict[str, int] = {}
    try:
        prio.before_sessions()
        prio.before_threads()
        helper = threading.Thread(
            target=lambda: seen.update(helper=os.sched_getparam(0).sched_priority)
        )
        helper.start()
        helper.join()
        prio.in_loop()
        seen["loop"] = os.sched_getparam(0).sched_priority
        prio.in_loop()  # a second call changes nothing
        s = prio.summary()
        if prio.fifo:
            # Permitted here: the helper thread inherited the lower rank, the loop the top.
            assert seen == {"helper": realtime.HELPER_PRIORITY, "loop": realtime.LOOP_PRIORITY}
        else:
            # Refused here: said so in one line each, and the run goes on unranked.
            assert s["notes"] and all("\n" not in n for n in s["notes"])
    finally:
        prio.close()
    assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == before
    assert os.sched_getaffinity(0) == affinity


def test_loop_priorities_disabled_touch_nothing() -> None:
    before = (os.sched_getscheduler(0), os.sched_getaffinity(0))
    prio = realtime.LoopPriorities(False, {0})
    prio.before_sessions()
    prio.before_threads()
    prio.in_loop()
    assert (os.sched_getscheduler(0), os.sched_getaffinity(0)) == before
    assert prio.summary() == {"applied": [], "notes": []}
    prio.close()


def test_bench_on_the_wall_clock_is_fed_by_prerendered_frames(bundle_dir: Path) -> None:
    from grasprt.drivers.prerendered import PRERENDER_FRAMES, PrerenderedFeed

    feed = PrerenderedFeed(build_drivers)
    parts = BenchParts(
        make_drivers=feed, check=check_drivers, views=held_out_views, render=feed.render_summary
    )
    cfg = bench_config(
        bundle=str(bundle_dir),
        sched="normal",
        **{"bench.cycles": 20, "bench.rate_hz": 30.0, "bench.model_reps": 5},
        **{"bench.record": False},
        # The ramp controller swings the camera off the colour blob: the perception gate
        # would rightly hold those cycles (its own tests: test_perception.py).
        **{"perception.enabled": False},
    )
    r = run_bench(cfg, parts)
    assert r["cycles"] == 20 and not r["faults"]
    assert r["feed"]["camera"] == "prerendered"
    assert r["feed"]["sim_render_ms"]["frames"] == PRERENDER_FRAMES
    # Photon to command: at least the cycle's own work, every cycle had a frame.
    assert r["photon_to_command_ms"]["p50"] > 0
    assert r["roofline"]["precision"] == "fp32" and r["roofline"]["models"]["bound_ms"]["bound"] > 0
    assert r["targets"]["on"]["isa"] == r["roofline"]["isa"]
    assert "photon_p99_minus_cycle_p99_ms" in r["targets"]
    # The cycle against the models back to back (the target) and once a period.
    ratio = r["targets"]["cycle_p50_over_models_sum"]
    assert ratio["value"] == pytest.approx(r["cycle_ms"]["p50"] / r["models_only_ms"]["sum"])
    assert ratio["over_models_at_cadence"] == pytest.approx(
        r["cycle_ms"]["p50"] / r["models_at_cadence_ms"]["sum"]
    )
    live = run_bench(replace_bench(cfg, feed="live"), parts)
    assert live["feed"]["camera"] == "sim"


def replace_bench(cfg: RunConfig, **changes: object) -> RunConfig:
    from dataclasses import replace

    return replace(cfg, bench=replace(cfg.bench, **changes))


@pytest.mark.slow
def test_bench_tune_saves_a_pick_that_bench_then_runs(bundle_dir: Path, tmp_path: Path) -> None:
    saved, first, second = tmp_path / "tuned.toml", tmp_path / "a.json", tmp_path / "b.json"
    common = ("--bundle", str(bundle_dir), "--clock", "sim", "--cycles", "5", "--model-reps", "5",
              "--no-recording", "-q")
    r = _cli(*common, "--tune", "--tune-attempts", "2", "--save", str(saved), "--json", str(first))
    assert r.returncode == 0, r.stderr
    a = json.loads(first.read_text())
    chosen = a["tuning"]["chosen"]
    assert a["tuning"]["closed_loop"]["attempts"] == 2
    assert a["roofline"]["precision"] == chosen["precision"] == a["precision"]
    r = _cli(*common, "--config", str(saved), "--json", str(second))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr  # tuned on this very CPU
    b = json.loads(second.read_text())
    ran = {"provider": b["provider"], "threads": b["threads"], "precision": b["precision"],
           "fused": b["fused"]}
    assert ran == {k: chosen[k] for k in ran}
