"""`grasprt bench`: the real loop (``Run``/``ControlLoop``), timed stage by stage.

One bench run answers, in one JSON document:
- where the milliseconds of a cycle go (the loop's own StageTimer, p50..max),
- how late the loop wakes and how often it overruns,
- each ONNX session alone (model-only), and the same weights in PyTorch eager,
  interleaved A/B so a noisy machine's drift cancels (``--compare torch``),
- the work per cycle in FLOPs against this CPU's peak,
- what N busy processes beside the loop do to it (``--stress N``),
- which ONNX Runtime settings and precision are fastest (``--tune``).

Nothing here asserts a time: the figures are reported, and judged against the
targets in ``targets`` for the reader.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from grasprt.bundle import N_JOINTS, Bundle
from grasprt.config import InferenceSettings, RunConfig, default_bundle
from grasprt.errors import ConfigError
from grasprt.runtime import realtime
from grasprt.runtime.flops import cpu_peak, model_flops
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.policy import OnnxPolicy
from grasprt.runtime.quantize import ViewSource
from grasprt.runtime.runner import DriverFactory, Run, RunReport
from grasprt.runtime.stress import stress
from grasprt.runtime.timing import summarize

# The longest episode the sim allows before it resets the world; a bench of more
# cycles runs several episodes back to back.
EPISODE_STEPS = 250
A_B_PAUSE_S = 0.005
# After each tuning run: ONNX Runtime's spinning workers go on for up to ~2**20 pause
# instructions (tens of ms on this class of CPU) before they sleep.
SETTLE_S = 0.03


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


def check_bench(cfg: RunConfig) -> None:
    if cfg.bench.rate_hz is not None and cfg.sim_clock:
        raise ConfigError("--rate and --clock sim exclude each other (the sim clock never waits)")


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
    """The issue's targets, judged on this run's figures where it has them."""
    t: dict[str, Any] = {}
    mo = result.get("models_only_ms", {})
    cyc = result.get("cycle_ms", {})
    # On the simulator's clock (--max) the cycle also renders the frame: not comparable.
    if mo.get("sum") and cyc.get("p50") and not result.get("max_rate"):
        ratio = cyc["p50"] / mo["sum"]
        t["cycle_p50_over_models_sum"] = {"value": ratio, "target": "<= 1.15", "met": ratio <= 1.15}
    sp = result.get("speedup_vs_torch", {})
    if sp.get("sum"):
        t["onnx_speedup_vs_torch"] = {
            "value": sp["sum"],
            "target": ">= 2",
            "met": sp["sum"] >= 2.0,
        }
    tun = result.get("tuning", {})
    if tun.get("segmenter_speedup_vs_fp32") is not None:
        v = tun["segmenter_speedup_vs_fp32"]
        t["fastest_passing_segmenter_vs_fp32"] = {"value": v, "target": ">= 3", "met": v >= 3.0}
    if not result.get("max_rate") and result.get("rate_hz") == 10.0:
        late = result.get("lateness_ms", {}).get("p99", 0.0)
        t["overruns_at_10hz"] = {
            "value": result.get("overruns"),
            "target": "0",
            "met": result.get("overruns") == 0,
            "cycles": result.get("cycles"),
        }
        t["lateness_p99_ms_at_10hz"] = {"value": late, "target": "<= 1", "met": late <= 1.0}
    st = result.get("stress", {})
    if st.get("p99_ratio") is not None:
        r = st["p99_ratio"]
        t["stress_cycle_p99_ratio"] = {"value": r, "target": "<= 2", "met": r <= 2.0}
    return t


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
    inference, segmenter_bytes = _pick_inference(cfg, parts, bundle, result, say)
    cfg = replace(cfg, inference=inference)
    prio.cpus = realtime.loop_cpu(inference.intra_op_threads)
    pipeline = Pipeline(bundle, inference, segmenter_bytes=segmenter_bytes, views=parts.views)
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
) -> tuple[InferenceSettings, bytes | None]:
    """The settings the loop runs: tuned with --tune, else as given (int8 gated)."""
    inference, b = cfg.inference, cfg.bench
    if b.tune:
        say("tuning: ONNX Runtime settings, fused graph and precision ...")
        tuning = tune(
            bundle, parts.views, inference.provider, reps=max(10, b.model_reps // 3), say=say
        )
        result["tuning"] = tuning.summary()
        say(f"tuning: chose {tuning.reason}")
        return tuning.chosen, tuning.segmenter_bytes
    if inference.precision == "int8":
        from grasprt.runtime.quantize import reduced_segmenter

        reduced = reduced_segmenter(bundle, inference.precision, inference, parts.views)
        result["precision_gate"] = reduced.summary()
        say(f"precision {inference.precision}: {reduced.verdict}")
        return inference, reduced.model
    return inference, None


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
            "peak_gflops": peak.gflops,
            "peak": peak.describe(),
        }
    )
    result["fraction_of_peak"] = result["achieved_gflops"] / peak.gflops
    return gflop


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

    def one_run(run_cfg: RunConfig) -> LoopRun:
        def tick(_episode: int, _step: int, _info: dict) -> None:
            counter["n"] += 1
            if on_cycle is not None:
                on_cycle(counter["n"], b.cycles)

        return run_loop(
            run_cfg,
            parts,
            rate_hz=rate,
            pipeline=pipeline,
            on_cycle=tick,
            progress=None,
            priorities=prio,
            cycles=b.cycles,
        )

    with tempfile.TemporaryDirectory(prefix="grasprt-bench-") as tmp:
        record_dir = Path(tmp) if b.record else None
        pace = "as fast as possible" if rate is None else f"at {rate:g} Hz"
        say(f"loop: {b.cycles} cycles {pace}")
        base = one_run(_run_config(cfg, record_dir))
        result.update(base.summary())
        runs = {"unloaded": base}
        if b.stress:
            counter["n"] = 0
            say(f"loop again with {b.stress} busy process(es) beside it ...")
            with stress(b.stress):
                loaded = one_run(_run_config(cfg, record_dir, "stress.mcap"))
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


# --- choosing the fast path ----------------------------------------------------------


@dataclass
class Tuning:
    chosen: InferenceSettings
    segmenter_bytes: bytes | None
    reason: str
    settings_ms: dict[str, float]
    precision: list[dict[str, Any]]
    segmenter_fp32_ms: float
    segmenter_chosen_ms: float

    def summary(self) -> dict[str, Any]:
        c = self.chosen
        return {
            "chosen": {
                "provider": c.provider,
                "threads": c.intra_op_threads,
                "allow_spinning": c.allow_spinning,
                "graph_optimization": c.graph_optimization,
                "fused": c.fused,
                "precision": c.precision,
            },
            "reason": self.reason,
            "pipeline_p50_ms": self.settings_ms,
            "precision_candidates": self.precision,
            "segmenter_fp32_ms": self.segmenter_fp32_ms,
            "segmenter_chosen_ms": self.segmenter_chosen_ms,
            "segmenter_speedup_vs_fp32": (
                self.segmenter_fp32_ms / self.segmenter_chosen_ms
                if self.segmenter_chosen_ms > 0
                else None
            ),
        }


def _label(c: InferenceSettings) -> str:
    if c.provider == "openvino":
        return f"openvino threads={c.intra_op_threads} fused={'on' if c.fused else 'off'}"
    return (
        f"{c.provider} threads={c.intra_op_threads} spin={'on' if c.allow_spinning else 'off'} "
        f"opt={c.graph_optimization} fused={'on' if c.fused else 'off'}"
    )


def _cycle_runner(p: Pipeline, view: np.ndarray, q: np.ndarray) -> Callable[[], None]:
    def one() -> None:
        p.segment(view)
        p.threshold()
        p.control(q, 0.0)

    return one


def _interleaved_p50(fns: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(2):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for i in range(reps):
        # Rotate the order each round: no configuration always runs first or last.
        k = i % len(names)
        for name in names[k:] + names[:k]:
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
            # Sessions with spinning workers keep a core busy after their run; back to
            # back, the next configuration would be timed against them (the tuning once
            # read 17 ms per cycle for models that take 7 alone). The loop's idle time
            # between cycles gives every engine a core at rest; so does this pause.
            time.sleep(SETTLE_S)
    return {k: _p50(v) for k, v in times.items()}


def tune(
    bundle: Bundle,
    views: ViewSource,
    provider: str = "cpu",
    *,
    reps: int = 20,
    say: Callable[[str], None] | None = None,
    thread_options: tuple[int, ...] | None = None,
) -> Tuning:
    """Measure the pipeline (segment, threshold, control) under each ONNX Runtime
    setting, interleaved; then each reduced precision that passes the IoU gate; pick
    the fastest. The loop runs the pick."""
    from grasprt.runtime.quantize import unsupported_reason

    say = say or (lambda s: None)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    threads = thread_options or tuple(sorted({1, max(1, cores)}))
    view = _sample_view(bundle, views)
    settings_ms, labels = _time_settings(bundle, provider, threads, view, reps)
    best_label = min(settings_ms, key=lambda k: settings_ms[k])
    best = labels[best_label]
    say(f"tuning: fastest settings {best_label} ({settings_ms[best_label]:.2f} ms p50)")

    candidates: list[dict[str, Any]] = []
    for prec in ("fp16", "bf16"):
        why = unsupported_reason(prec, provider)
        candidates.append({"precision": prec, "offered": why is None, "verdict": why})
    say("tuning: int8 QDQ, calibrated on simulator frames, IoU gate on held-out frames ...")
    seg_ms, variants = _time_int8(bundle, views, best, provider, view, reps)
    for key, (r, _) in variants.items():
        candidates.append(
            {**r.summary(), "engine": key, "offered": True, "segmenter_p50_ms": seg_ms[key]}
        )
    chosen, chosen_bytes, chosen_ms, why = _pick_precision(best, variants, seg_ms)
    reason = (
        f"{_label(best)} ({settings_ms[best_label]:.2f} ms per cycle's models), precision {why}"
    )
    return Tuning(
        chosen=chosen,
        segmenter_bytes=chosen_bytes,
        reason=reason,
        settings_ms=settings_ms,
        precision=candidates,
        segmenter_fp32_ms=seg_ms["fp32"],
        segmenter_chosen_ms=chosen_ms,
    )


def _time_settings(
    bundle: Bundle, provider: str, threads: tuple[int, ...], view: np.ndarray, reps: int
) -> tuple[dict[str, float], dict[str, InferenceSettings]]:
    """Each fp32 setting's p50 per cycle of models, interleaved, by label."""
    from grasprt.runtime import openvino_backend

    q = np.zeros(N_JOINTS, dtype=np.float32)
    configs = [
        InferenceSettings(
            provider=provider,
            intra_op_threads=t,
            allow_spinning=spin,
            graph_optimization=opt,
            fused=fused,
        )
        for t in threads
        for spin in (False, True)
        for opt in ("basic", "all")
        for fused in (False, True)
    ]
    if provider == "cpu" and openvino_backend.available():
        # The other CPU engine, on the same graphs: it competes for the pick.
        configs += [
            InferenceSettings(provider="openvino", intra_op_threads=t, fused=fused)
            for t in threads
            for fused in (False, True)
        ]
    pipes = {_label(c): (c, Pipeline(bundle, c)) for c in configs}
    settings_ms = _interleaved_p50(
        {k: _cycle_runner(p, view, q) for k, (_, p) in pipes.items()}, reps
    )
    return settings_ms, {k: c for k, (c, _) in pipes.items()}


def _time_int8(
    bundle: Bundle,
    views: ViewSource,
    best: InferenceSettings,
    provider: str,
    view: np.ndarray,
    reps: int,
) -> tuple[dict[str, float], dict[str, tuple[Any, InferenceSettings]]]:
    """The segmenter's p50 in fp32 and in each int8 variant on each engine."""
    from grasprt.runtime import openvino_backend
    from grasprt.runtime.quantize import int8_candidates

    reduced = int8_candidates(bundle, views)
    # The reference: ONNX Runtime fp32 with the chosen thread count (what the issue's
    # ">= 3x" is against); and the fastest fp32 setting, which a reduced model must beat.
    ort_fp32 = replace(best, provider=provider, fused=False)
    engines = [provider]
    if provider == "cpu" and openvino_backend.available():
        engines.append("openvino")
    seg_pipes: dict[str, Pipeline] = {
        "fp32": Pipeline(bundle, ort_fp32),
        "best fp32": Pipeline(bundle, replace(best, fused=False)),
    }
    variants: dict[str, tuple[Any, InferenceSettings]] = {}
    for r in reduced:
        for engine in engines:
            cfg = replace(ort_fp32, provider=engine)
            key = f"{r.variant} on {engine}"
            seg_pipes[key] = Pipeline(bundle, cfg, segmenter_bytes=r.model)
            variants[key] = (r, cfg)
    for p in seg_pipes.values():
        np.copyto(p.image[0], view)
    return _interleaved_p50({k: p.segmenter.run for k, p in seg_pipes.items()}, reps), variants


def _pick_precision(
    best: InferenceSettings,
    variants: dict[str, tuple[Any, InferenceSettings]],
    seg_ms: dict[str, float],
) -> tuple[InferenceSettings, bytes | None, float, str]:
    """The fastest admitted int8 variant that beats the best fp32, else fp32; and why."""
    passing = [k for k, (r, _) in variants.items() if r.passed and seg_ms[k] < seg_ms["best fp32"]]
    if passing:
        key = min(passing, key=lambda k: seg_ms[k])
        r, cfg = variants[key]
        why = (
            f"{key}: segmenter {seg_ms[key]:.2f} ms vs ONNX Runtime fp32 {seg_ms['fp32']:.2f} ms, "
            f"{r.verdict}"
        )
        return replace(best, provider=cfg.provider, precision="int8"), r.model, seg_ms[key], why
    verdicts = "; ".join(f"{k}: {seg_ms[k]:.2f} ms, {r.verdict}" for k, (r, _) in variants.items())
    why = (
        f"fp32 (segmenter {seg_ms['best fp32']:.2f} ms; ONNX Runtime fp32 "
        f"{seg_ms['fp32']:.2f} ms): no faster precision passed ({verdicts})"
    )
    return best, None, seg_ms["best fp32"], why
