"""`grasprt bench`: the real loop (``Run``/``ControlLoop``), timed stage by stage.

One bench run answers, in one JSON document:
- where the milliseconds of a cycle go (the loop's own StageTimer, p50..max),
- how late the loop wakes and how often it overruns,
- each ONNX session alone (model-only), and the same weights in PyTorch eager,
  interleaved A/B so a noisy machine's drift cancels (``--compare torch``),
- the work per cycle in FLOPs against this CPU's peak,
- what N busy processes beside the loop do to it (``--stress N``),
- which engine, settings and precision are fastest (``--tune``, runtime/tuning.py),
  where the run's threads go (placement, measured), and the pick saved (``--save``),
- a roofline for the precision that ran (runtime/roofline.py),
- with ``--gpu``, the CUDA and TensorRT providers against the CPU (runtime/gpu_bench.py).

The loop is fed by a camera that costs its cores nothing (frames rendered before
timing, delivered by a thread: drivers/prerendered.py); the render cost is its own line.

Nothing here asserts a time: the figures are reported, and judged against the
targets in ``targets`` for the reader.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from grasprt.bundle import Bundle
from grasprt.config import InferenceSettings, RunConfig, default_bundle
from grasprt.errors import ConfigError
from grasprt.runtime import realtime
from grasprt.runtime.cpu import cpu_info
from grasprt.runtime.flops import cpu_peak, model_flops
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.policy import OnnxPolicy
from grasprt.runtime.quantize import ViewSource
from grasprt.runtime.runner import DriverFactory, Run, RunReport
from grasprt.runtime.stress import stress
from grasprt.runtime.timing import summarize
from grasprt.runtime.tuning import Tuning, thread_count, tune

# The longest episode the sim allows before it resets the world; a bench of more
# cycles runs several episodes back to back.
EPISODE_STEPS = 250
A_B_PAUSE_S = 0.005
# The stress run's cycles when not given: enough for a p99, a fraction of a long run.
STRESS_CYCLES = 600
# Periods of the models-at-cadence figure (at most --model-reps): 4 s at 10 Hz.
CADENCE_SLOTS = 40


EagerFactory = Callable[[Bundle, int], Any]


@dataclass(frozen=True)
class BenchParts:
    """What the bench needs from the layers above: the drivers' factory and the
    held-out views reduced precisions are gated on (the runtime builds neither)."""

    make_drivers: DriverFactory
    # Refuses a run the drivers cannot do, building nothing (registry.check_drivers).
    check: Callable[[RunConfig, Bundle], None]
    views: ViewSource
    # The same weights in PyTorch eager, (bundle, threads) -> an EagerPair
    # (export/eager.py): torch lives in the export extra, never in the runtime.
    eager: EagerFactory | None = None
    # (cfg, pipeline, attempts) -> grasp success per attempt on the simulator's clock,
    # the closed-loop check of a tuned pick (evaluation's attempts; None: unchecked).
    closed_loop: Callable[[RunConfig, Pipeline, int], list[bool]] | None = None
    # The render cost of the frames the feed prerendered (None: rendered in the loop).
    render: Callable[[], dict[str, Any] | None] | None = None


def check_bench(cfg: RunConfig) -> None:
    if cfg.bench.rate_hz is not None and cfg.sim_clock:
        raise ConfigError("--rate and --clock sim exclude each other (the sim clock never waits)")
    if cfg.bench.save and not cfg.bench.tune:
        raise ConfigError("--save writes the pick of --tune: add --tune")
    if cfg.bench.gpu:
        from grasprt.runtime.gpu_bench import gpu_refusal

        why = gpu_refusal()
        if why:
            raise ConfigError(why)


# --- model-only timings ---------------------------------------------------------------


def _sample_view(bundle: Bundle, views: ViewSource) -> np.ndarray:
    return views(bundle, [7])[0]


def _p50(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3 if samples else 0.0


def models_only(pipeline: Pipeline, view: np.ndarray, reps: int) -> dict[str, Any]:
    """Each ONNX session alone on bound buffers (the loop's own sessions), p50 in ms.
    Runs are interleaved (seg, ctl, fused, seg, ...) so drift hits all alike."""
    np.copyto(pipeline.image[0], view)
    pipeline.segmenter.run()
    pipeline.threshold()
    sessions = {"segmenter": pipeline.segmenter, "controller": pipeline.controller}
    if pipeline.fused is not None:
        sessions["fused"] = pipeline.fused
    for b in sessions.values():  # warm-up: first runs allocate and pick kernels
        for _ in range(3):
            b.run()
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(reps):
        for name, b in sessions.items():
            t = time.perf_counter()
            b.run()
            times[name].append(time.perf_counter() - t)
    out: dict[str, Any] = {k: _p50(v) for k, v in times.items()}
    out["sum"] = out["segmenter"] + out["controller"]
    out["detail"] = {k: summarize(np.asarray(v) * 1e3) for k, v in times.items()}
    return out


def compare_torch(
    bundle: Bundle, pipeline: Pipeline, view: np.ndarray, reps: int, eager_pair: EagerFactory
) -> dict:
    """ONNX Runtime against PyTorch eager on the same weights, A/B interleaved, with the
    order flipped every repetition so neither always runs on a warm cache."""
    eager = eager_pair(bundle, pipeline.cfg.intra_op_threads)
    np.copyto(pipeline.image[0], view)
    pipeline.segmenter.run()
    pipeline.threshold()
    pipeline.controller.run()
    image, mask, state = pipeline.image.copy(), pipeline.mask.copy(), pipeline.state.copy()
    parity = eager.check_parity(pipeline.prob, pipeline.action, image, mask, state)
    for _ in range(3):
        eager.segment(image)
        eager.control(mask, state)
    onnx_t: dict[str, list[float]] = {"segmenter": [], "controller": []}
    torch_t: dict[str, list[float]] = {"segmenter": [], "controller": []}
    runs = {
        "segmenter": (pipeline.segmenter.run, lambda: eager.segment(image)),
        "controller": (pipeline.controller.run, lambda: eager.control(mask, state)),
    }
    for i in range(reps):
        for name, (ort_run, torch_run) in runs.items():
            pair = [(onnx_t, ort_run), (torch_t, torch_run)]
            for store, fn in pair if i % 2 == 0 else pair[::-1]:
                t = time.perf_counter()
                fn()
                store[name].append(time.perf_counter() - t)
                # PyTorch's OpenMP workers spin on for a while after a run; back to back,
                # they would steal the cores from the ONNX Runtime run that follows. A
                # pause, as the loop's idle time between cycles gives, lets each engine
                # start from rest, as it would in the loop.
                time.sleep(A_B_PAUSE_S)
    onnx_ms = {k: _p50(v) for k, v in onnx_t.items()}
    torch_ms = {k: _p50(v) for k, v in torch_t.items()}
    onnx_ms["sum"] = onnx_ms["segmenter"] + onnx_ms["controller"]
    torch_ms["sum"] = torch_ms["segmenter"] + torch_ms["controller"]
    return {
        "onnx_ms": onnx_ms,
        "torch_ms": torch_ms,
        "speedup": {k: torch_ms[k] / onnx_ms[k] if onnx_ms[k] > 0 else 0.0 for k in onnx_ms},
        "parity_max_abs_err": parity,
        "torch": eager.torch_version,
        "pause_ms": A_B_PAUSE_S * 1e3,
        "threads": pipeline.cfg.intra_op_threads,
    }


# --- the loop ---------------------------------------------------------------------------


@dataclass
class LoopRun:
    report: RunReport
    cycle_ms: np.ndarray
    lateness_ms: np.ndarray
    stage_ms: np.ndarray  # [cycles, stages]
    stages: tuple[str, ...]
    period_s: float
    # The floor height the run's limiter kept (its [limiter] settings and the table).
    limiter_floor: float | None = None
    camera: str = ""  # the camera the loop read (its driver's name)

    def summary(self) -> dict[str, Any]:
        s = self.report.summary()
        ok = np.isfinite(self.cycle_ms)
        sums = np.nansum(self.stage_ms[ok], axis=1)
        gap = self.cycle_ms[ok] - sums
        worst = float(self.cycle_ms[ok].max()) if ok.any() else 0.0
        cycle = s["cycle_ms"]
        late = s["lateness_ms"]
        # The slowest cycle that still leaves its wake-up lateness room in the period.
        busy = cycle.get("p999", 0.0) + late.get("p999", 0.0)
        return {
            "cycles": s["cycles"],
            "overruns": s["overruns"],
            "cycle_ms": cycle,
            "lateness_ms": late,
            "photon_to_command_ms": s["photon_to_command_ms"],
            "stages": s["stages"],
            # What the stage marks miss: timer overhead and the gaps between marks.
            "stage_gap_ms": summarize(gap),
            "worst_cycle_ms": worst,
            "max_rate_hz": 1e3 / busy if busy > 0 else 0.0,
            "period_ms": self.period_s * 1e3,
            "faults": s["faults"],
            "holds": s["holds"],
            "dropped_records": s["dropped_records"],
            "limited_steps": s["limited_steps"],
            "limiter_floor_m": self.limiter_floor,
        }


def _policy_of(pipeline: Pipeline) -> Callable[[Run], Any]:
    return lambda run: OnnxPolicy(pipeline, truth_mask=run.cfg.gt_mask)


def run_loop(
    cfg: RunConfig,
    parts: BenchParts,
    *,
    rate_hz: float | None,
    pipeline: Pipeline | None = None,
    on_cycle: Callable[[int, int, dict], None] | None = None,
    progress: Callable[[str], None] | None = None,
    priorities: realtime.LoopPriorities | None = None,
    cycles: int | None = None,
) -> LoopRun:
    """The real ``Run`` with its real ``ControlLoop``; ``pipeline`` replaces the one
    ``Run`` builds (a tuned or reduced-precision one, built once for the bench).
    With ``cycles``, the run stops once that many cycles are timed: episodes that end
    early in a grasp would otherwise leave the count short."""

    def counted(episode: int, step: int, info: dict) -> None:
        if on_cycle is not None:
            on_cycle(episode, step, info)
        if cycles is not None and run.loop is not None and run.loop.timer.n >= cycles:
            run.loop.request_stop(f"bench: {cycles} cycles timed")

    run = Run(
        cfg,
        make_drivers=parts.make_drivers,
        views=parts.views,
        policy=None if pipeline is None else _policy_of(pipeline),
        progress=progress,
        on_cycle=counted,
        rate_hz=rate_hz,
        priorities=priorities,
    )
    report = run.execute()
    assert run.loop is not None
    timer = run.loop.timer
    n = timer.n
    return LoopRun(
        report=report,
        cycle_ms=timer.cycle_ms[:n].copy(),
        lateness_ms=timer.lateness_ms[:n].copy(),
        stage_ms=timer.table[:n].copy(),
        stages=timer.stages,
        period_s=run.loop.period,
        limiter_floor=run.limiter.config.floor,
        camera=run.drivers.camera.name,
    )


# --- the whole bench --------------------------------------------------------------------


def _run_config(cfg: RunConfig, record_dir: Path | None, name: str = "bench.mcap") -> RunConfig:
    cycles = cfg.bench.cycles
    steps = min(cycles, EPISODE_STEPS)
    return replace(
        cfg,
        # Room for episodes that end early in a grasp; run_loop stops at `cycles`.
        episodes=max(1, math.ceil(cycles / steps)) * 20,
        max_steps=steps,
        record=None if record_dir is None else str(record_dir / name),
        json=None,
    )


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    from grasprt.runtime.targets import targets

    return targets(result, cpu_info())


def run_bench(
    cfg: RunConfig,
    parts: BenchParts,
    *,
    progress: Callable[[str], None] | None = None,
    on_cycle: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Everything `grasprt bench` reports, as one JSON-ready dict (see docs/bench.md)."""
    say = progress or (lambda s: None)
    from grasprt.bundle import load_bundle

    check_bench(cfg)
    bundle = load_bundle(cfg.bundle or default_bundle())
    # What cannot run is refused before minutes of measuring, not after.
    parts.check(cfg, bundle)
    result: dict[str, Any] = {}
    # SCHED_FIFO and locked memory before any session exists: ONNX Runtime's worker
    # threads, created with the sessions, inherit the policy; tuning then measures the
    # settings as the loop will run them. (Not on the sim clock: a loop that never
    # sleeps at SCHED_FIFO would starve a core.)
    prio = realtime.LoopPriorities(cfg.sched == "fifo" and not cfg.sim_clock)
    if cfg.sim_clock:
        prio.notes.append("real-time settings off: --clock sim never sleeps")
    elif cfg.sched != "fifo":
        prio.notes.append("real-time settings off (--sched normal)")
    prio.before_sessions()
    for note in prio.notes:
        say(note)
    try:
        return _bench(cfg, parts, bundle, result, prio, say, on_cycle)
    finally:
        prio.close()


def _bench(
    cfg: RunConfig,
    parts: BenchParts,
    bundle: Bundle,
    result: dict[str, Any],
    prio: realtime.LoopPriorities,
    say: Callable[[str], None],
    on_cycle: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    if cfg.bench.gpu:
        from grasprt.runtime.gpu_bench import gpu_bench

        say("GPU: CUDA and TensorRT providers against the CPU ...")
        result["gpu"] = gpu_bench(bundle, _sample_view(bundle, parts.views), cfg.bench.model_reps)
    threads_start = thread_count()
    inference, segmenter_bytes, tuning = _pick_inference(cfg, parts, bundle, result, say)
    if tuning is not None:
        inference = _place(cfg, parts, bundle, tuning, result, prio, say)
        _save(cfg, tuning, inference, say)
    cfg = replace(cfg, inference=inference)
    prio.cpus, prio.helper_cpus = realtime.placement_cpus(
        inference.placement, inference.intra_op_threads
    )
    admitted = None if tuning is None else tuning.gate_of(inference)
    threads_before = thread_count()
    pipeline = Pipeline(
        bundle, inference, segmenter_bytes=segmenter_bytes, views=parts.views, admitted=admitted
    )
    result["threads_alive"] = {
        "at_start": threads_start,
        "before_loop_pipeline": threads_before,
        "with_loop_pipeline": thread_count(),
    }
    gate = getattr(pipeline, "gate", None)
    if gate is not None:
        result["precision_gate"] = gate.summary()
        say(f"precision {inference.precision}: {gate.verdict}")
    mo = _model_figures(cfg, parts, bundle, pipeline, result, say)
    rate = None if cfg.sim_clock else (cfg.bench.rate_hz or bundle.rate_hz)
    gflop = _work_figures(cfg, bundle, pipeline, mo, rate, result)
    runs = _loop_runs(cfg, parts, pipeline, rate, result, prio, say, on_cycle)
    result["achieved_gflops_loop"] = (
        gflop / (result["cycle_ms"]["p50"] / 1e3) if result["cycle_ms"]["p50"] else 0.0
    )
    _roofline(cfg, bundle, pipeline, mo, result)
    result["_runs"] = runs  # for the plot; dropped before JSON
    result["realtime"] = prio.summary()
    result["targets"] = _targets(result)
    return result


def _pick_inference(
    cfg: RunConfig,
    parts: BenchParts,
    bundle: Bundle,
    result: dict[str, Any],
    say: Callable[[str], None],
) -> tuple[InferenceSettings, bytes | None, Tuning | None]:
    """The settings the loop runs: tuned with --tune, else as given (int8 gated)."""
    inference, b = cfg.inference, cfg.bench
    if b.tune:
        say("tuning: every engine and precision this CPU runs ...")
        check = parts.closed_loop
        tuning = tune(
            bundle,
            parts.views,
            inference.provider,
            reps=max(10, b.model_reps // 3),
            say=say,
            closed_loop=None if check is None else (lambda p, n: check(cfg, p, n)),
            attempts=b.tune_attempts,
        )
        result["tuning"] = tuning.summary()
        say(f"tuning: chose {tuning.reason}")
        th = tuning.threads
        say(f"tuning: threads alive {th['before']} before tuning, {th['after_release']} after")
        return tuning.chosen, tuning.segmenter_bytes, tuning
    if inference.precision == "int8":
        from grasprt.runtime.quantize import reduced_segmenter

        reduced = reduced_segmenter(bundle, inference.precision, inference, parts.views)
        result["precision_gate"] = reduced.summary()
        say(f"precision {inference.precision}: {reduced.verdict}")
        return inference, reduced.model, None
    return inference, None, None


def _place(
    cfg: RunConfig,
    parts: BenchParts,
    bundle: Bundle,
    tuning: Tuning,
    result: dict[str, Any],
    prio: realtime.LoopPriorities,
    say: Callable[[str], None],
) -> InferenceSettings:
    """The tuned pick with the thread placement measured best (not on the sim clock)."""
    from grasprt.runtime.placement import measure_placement

    if cfg.sim_clock:
        result["placement"] = {"measured": False, "why": "--clock sim: nothing waits"}
        return tuning.chosen
    say("placement: short loops for each way of placing the threads ...")
    place = measure_placement(
        tuning.chosen,
        lambda inf, cycles, rate: _short_loop(
            cfg, parts, bundle, tuning, inf, cycles, rate, prio
        ).summary(),
        prio,
    )
    result["placement"] = place.summary()
    say(f"placement: {place.reason}")
    return _prewarm(cfg, parts, bundle, tuning, place.chosen, result, prio, say)


def _short_loop(
    cfg: RunConfig,
    parts: BenchParts,
    bundle: Bundle,
    tuning: Tuning,
    inf: InferenceSettings,
    cycles: int,
    rate: float,
    prio: realtime.LoopPriorities,
) -> LoopRun:
    """One of tuning's short loops: `inf` on a fresh pipeline, `cycles` at `rate`."""
    return run_loop(
        replace(_run_config(replace(cfg, bench=replace(cfg.bench, cycles=cycles)), None),
                inference=inf),
        parts,
        rate_hz=rate,
        pipeline=Pipeline(bundle, inf, segmenter_bytes=tuning.segmenter_bytes,
                          admitted=tuning.gate_of(inf)),
        priorities=prio,
        cycles=cycles,
    )  # fmt: skip


def _prewarm(
    cfg: RunConfig,
    parts: BenchParts,
    bundle: Bundle,
    tuning: Tuning,
    chosen: InferenceSettings,
    result: dict[str, Any],
    prio: realtime.LoopPriorities,
    say: Callable[[str], None],
) -> InferenceSettings:
    """The placed pick with or without a pre-warm, measured at the loop's rate."""
    from grasprt.runtime.prewarm import measure_prewarm

    def probe(inf: InferenceSettings, cycles: int, rate: float) -> tuple[Any, Any]:
        run = _short_loop(cfg, parts, bundle, tuning, inf, cycles, rate, prio)
        return run.cycle_ms, run.lateness_ms

    say("pre-warm: short loops at the loop's rate without and with it ...")
    prio.cpus, prio.helper_cpus = realtime.placement_cpus(
        chosen.placement, chosen.intra_op_threads
    )
    choice = measure_prewarm(chosen, probe, cfg.bench.rate_hz or bundle.rate_hz)
    result["prewarm"] = choice.summary()
    say(f"pre-warm: {choice.reason}")
    return choice.chosen


def _save(cfg: RunConfig, tuning: Tuning, inference: InferenceSettings, say) -> None:
    if not cfg.bench.save:
        return
    from grasprt.runtime.tuned import save

    save(cfg.bench.save, inference, tuning.cpu, tuning.reason)
    say(f"tuning: saved [inference] to {cfg.bench.save} (load it with --config)")


def _model_figures(
    cfg: RunConfig,
    parts: BenchParts,
    bundle: Bundle,
    pipeline: Pipeline,
    result: dict[str, Any],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Each session alone, and PyTorch eager beside it with --compare torch."""
    reps = cfg.bench.model_reps
    view = _sample_view(bundle, parts.views)
    say(f"model-only: {reps} runs of each session ...")
    mo = models_only(pipeline, view, reps)
    result["models_only_ms"] = {k: v for k, v in mo.items() if k != "detail"}
    result["models_only_detail_ms"] = mo["detail"]
    _cadence(cfg, bundle, pipeline, view, result, say)
    if not cfg.bench.compare_torch:
        return mo
    say(f"PyTorch eager vs ONNX Runtime: {reps} interleaved pairs ...")
    # PyTorch runs the bundle's fp32 weights: compare like with like, whatever
    # precision or provider the loop itself ran with.
    ref = pipeline
    if pipeline.cfg.precision != "fp32" or pipeline.cfg.provider != "cpu":
        ref = Pipeline(bundle, replace(pipeline.cfg, precision="fp32", provider="cpu", fused=False))
    if parts.eager is None:
        raise ConfigError("--compare torch: this command has no PyTorch to compare with")
    cmp = compare_torch(bundle, ref, view, reps, parts.eager)
    result["torch_ms"] = cmp["torch_ms"]
    result["onnx_ms_interleaved"] = cmp["onnx_ms"]
    result["speedup_vs_torch"] = cmp["speedup"]
    result["torch_parity_max_abs_err"] = cmp["parity_max_abs_err"]
    result["torch_ab_pause_ms"] = cmp["pause_ms"]
    return mo


def _cadence(
    cfg: RunConfig,
    bundle: Bundle,
    pipeline: Pipeline,
    view: np.ndarray,
    result: dict[str, Any],
    say: Callable[[str], None],
) -> None:
    """The same sessions once a period at the loop's rate (not on the sim clock)."""
    if cfg.sim_clock:
        return
    from grasprt.runtime.cadence import models_at_cadence

    rate = cfg.bench.rate_hz or bundle.rate_hz
    slots = min(cfg.bench.model_reps, CADENCE_SLOTS)
    say(f"model-only at the loop's cadence: {slots} periods at {rate:g} Hz ...")
    cad = models_at_cadence(pipeline, view, rate, slots)
    result["models_at_cadence_ms"] = {k: v for k, v in cad.items() if k != "detail"}
    result["models_at_cadence_detail_ms"] = cad["detail"]


def _work_figures(
    cfg: RunConfig,
    bundle: Bundle,
    pipeline: Pipeline,
    mo: dict[str, Any],
    rate: float | None,
    result: dict[str, Any],
) -> float:
    """What ran and how much work it is against the CPU's peak; returns GFLOP/cycle."""
    inference = pipeline.cfg
    seg_flops = model_flops(pipeline.segmenter_model)
    ctl_flops = model_flops(bundle.controller_bytes)
    gflop = (seg_flops + ctl_flops) / 1e9
    peak = cpu_peak()
    from grasprt.runtime.roofline import peaks

    # Against the peak of the precision that ran, not fp32's (a bf16 run on AMX would
    # otherwise read above 100 %).
    prec_peak = peaks(cpu_info(), peak.cores)[inference.precision]
    result.update(
        {
            "bundle": str(bundle.root),
            "placeholder": bool(bundle.provenance.get("placeholder")),
            "provider": inference.provider,
            "threads": inference.intra_op_threads,
            "precision": inference.precision,
            "fused": inference.fused,
            "graph_optimization": inference.graph_optimization,
            "allow_spinning": inference.allow_spinning,
            "max_rate": cfg.sim_clock,
            "clock": cfg.clock,
            "rate_hz": rate,
            "camera": cfg.camera or "sim",
            "gflops_per_cycle": gflop,
            "gflops_by_model": {"segmenter": seg_flops / 1e9, "controller": ctl_flops / 1e9},
            "achieved_gflops": gflop / (mo["sum"] / 1e3) if mo["sum"] > 0 else 0.0,
            "peak_gflops": prec_peak["gflops"],
            "peak": f"{inference.precision}: {prec_peak['describe']}",
            "peak_fp32_gflops": peak.gflops,
        }
    )
    result["fraction_of_peak"] = result["achieved_gflops"] / prec_peak["gflops"]
    return gflop


def _roofline(
    cfg: RunConfig, bundle: Bundle, pipeline: Pipeline, mo: dict[str, Any], result: dict[str, Any]
) -> None:
    """The segmenter and the cycle's models against the bound of the precision and the
    threads that ran (runtime/roofline.py)."""
    from grasprt.runtime.roofline import Roofline, measured_bandwidth, model_bytes, peaks

    inf = pipeline.cfg
    cpu = cpu_info()
    cores = min(inf.intra_op_threads, cpu.cores)
    pk = peaks(cpu, cores)
    bw = measured_bandwidth()
    # int8 is the segmenter's alone; a bf16/fp16 hint applies to both graphs.
    ctl_prec = inf.precision if inf.precision in ("bf16", "fp16") else "fp32"
    seg_f, ctl_f = model_flops(pipeline.segmenter_model), model_flops(bundle.controller_bytes)
    seg_b = model_bytes(pipeline.segmenter_model, inf.precision)["total"]
    ctl_b = model_bytes(bundle.controller_bytes, ctl_prec)["total"]
    peak = pk[inf.precision]

    def line(flops: float, nbytes: int, ms: float) -> dict[str, Any]:
        return Roofline(
            inf.precision,
            flops,
            nbytes,
            peak["gflops"],
            peak["unit"],
            bw["dram_gbs"],
            bw["cache_gbs"],
        ).judge(ms)

    cycle_ms = mo.get("fused", mo["sum"]) if inf.fused else mo["sum"]
    result["roofline"] = {
        "precision": inf.precision,
        "cores": cores,
        "peaks": pk,
        "bandwidth": bw,
        "segmenter": line(seg_f, seg_b, mo["segmenter"]),
        "models": line(seg_f + ctl_f, seg_b + ctl_b, cycle_ms),
        "cpu": cpu.model,
        "isa": cpu.isa,
    }


def _loop_runs(
    cfg: RunConfig,
    parts: BenchParts,
    pipeline: Pipeline,
    rate: float | None,
    result: dict[str, Any],
    prio: realtime.LoopPriorities,
    say: Callable[[str], None],
    on_cycle: Callable[[int, int], None] | None,
) -> dict[str, LoopRun]:
    """The real loop, unloaded and (with --stress) beside busy neighbours."""
    b = cfg.bench
    counter = {"n": 0}

    def one_run(run_cfg: RunConfig, cycles: int = b.cycles) -> LoopRun:
        def tick(_episode: int, _step: int, _info: dict) -> None:
            counter["n"] += 1
            if on_cycle is not None:
                on_cycle(counter["n"], cycles)

        return run_loop(
            run_cfg,
            parts,
            rate_hz=rate,
            pipeline=pipeline,
            on_cycle=tick,
            progress=None,
            priorities=prio,
            cycles=cycles,
        )

    with tempfile.TemporaryDirectory(prefix="grasprt-bench-") as tmp:
        record_dir = Path(tmp) if b.record else None
        pace = "as fast as possible" if rate is None else f"at {rate:g} Hz"
        say(f"loop: {b.cycles} cycles {pace}")
        base = one_run(_run_config(cfg, record_dir))
        result.update(base.summary())
        prerendered = base.camera == "prerendered" and parts.render is not None
        # Prerendered: the frames were made before timing; this is what each cost.
        result["feed"] = {
            "camera": base.camera,
            "sim_render_ms": parts.render() if prerendered else None,
        }
        runs = {"unloaded": base}
        if b.stress:
            counter["n"] = 0
            say(f"loop again with {b.stress} busy process(es) beside it ...")
            n = b.stress_cycles or min(b.cycles, STRESS_CYCLES)
            loaded_cfg = replace(cfg, bench=replace(b, cycles=n))
            with stress(b.stress):
                loaded = one_run(_run_config(loaded_cfg, record_dir, "stress.mcap"), n)
            ls = loaded.summary()
            p99 = result["cycle_ms"]["p99"]
            result["stress"] = {
                "processes": b.stress,
                **ls,
                "p99_ratio": ls["cycle_ms"]["p99"] / p99 if p99 > 0 else None,
            }
            runs[f"stress {b.stress}"] = loaded
    return runs


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}
