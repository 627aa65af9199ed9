"""`grasprt bench --tune`: every engine and precision this CPU can run, timed; the
fastest admitted one picked, and why.

1. fp32 settings, interleaved: ONNX Runtime (threads x spinning x optimisation level x
   fused) and OpenVINO (threads x fused) when installed.
2. Precisions on the fastest fp32 setting of each engine: ONNX Runtime fp32 (the
   reference), OpenVINO fp32, OpenVINO's bf16 / fp16 hints where the CPU's flags *and*
   OpenVINO report them, and int8 QDQ on both engines. Each reduced one must pass the
   IoU gate (quantize.py) before it is timed.
3. The pick: the fastest pipeline (segment, threshold, control) among the admitted ones;
   it must also pass a short closed-loop check (``closed_loop``: grasp success on the
   simulator's clock not more than ``MAX_SUCCESS_DROP`` below ONNX Runtime fp32 on the
   same attempts), else the next fastest is checked.
4. Everything tuning built (sessions, OpenVINO compiled models, their thread pools) is
   dropped and collected before the loop's own pipeline is built; the process's thread
   count before and after says whether it is gone.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from grasprt.bundle import N_JOINTS, Bundle
from grasprt.config import InferenceSettings
from grasprt.runtime import realtime
from grasprt.runtime.cpu import CpuInfo, cpu_info
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.quantize import ViewSource
from grasprt.runtime.timing_ab import interleaved_p50

# Grasp success of the pick may fall at most this far below fp32's (fraction).
MAX_SUCCESS_DROP = 0.03
CLOSED_LOOP_ATTEMPTS = 25

# (pipeline, attempts) -> one success flag per attempt, on the simulator's clock.
ClosedLoop = Callable[[Pipeline, int], list[bool]]


def thread_count() -> int:
    """Threads of this process now (Linux: /proc/self/task; else unknown, -1)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


@dataclass
class Candidate:
    key: str
    settings: InferenceSettings
    segmenter_bytes: bytes | None = None
    gate: Any = None  # quantize.Reduced, for a reduced precision
    offered: bool = True
    verdict: str = "reference"
    segmenter_ms: float | None = None
    pipeline_ms: float | None = None
    success: float | None = None  # closed-loop grasp success, when checked

    @property
    def admitted(self) -> bool:
        return self.offered and (self.gate is None or self.gate.passed)

    def summary(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {
            "candidate": self.key,
            "provider": s.provider,
            "precision": s.precision,
            "threads": s.intra_op_threads,
            "fused": s.fused,
            "offered": self.offered,
            "admitted": self.admitted,
            "verdict": self.verdict,
            "segmenter_p50_ms": self.segmenter_ms,
            "pipeline_p50_ms": self.pipeline_ms,
            "closed_loop_success": self.success,
        }
        if self.gate is not None:
            out.update(
                {k: self.gate.summary()[k] for k in ("variant", "iou", "min_iou", "frames")}
            )
        return out


@dataclass
class Tuning:
    chosen: InferenceSettings
    segmenter_bytes: bytes | None
    reason: str
    settings_ms: dict[str, float]
    candidates: list[Candidate]
    segmenter_fp32_ms: float
    segmenter_chosen_ms: float
    cpu: CpuInfo
    closed_loop: dict[str, Any] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)
    chosen_gate: Any = None
    chosen_key: str = ""

    def gate_of(self, inf: InferenceSettings) -> Any:
        """The pick's gate verdict for ``inf`` (the pick at another thread count or
        placement), so a pipeline built for it need not gate again."""
        c = self.chosen
        same = inf.provider == c.provider and inf.precision == c.precision
        return self.chosen_gate if same else None

    @property
    def precision(self) -> list[dict[str, Any]]:
        return [c.summary() for c in self.candidates]

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
                "placement": c.placement,
            },
            "chosen_candidate": self.chosen_key,
            "reason": self.reason,
            "cpu": self.cpu.model,
            "isa": self.cpu.isa,
            "pipeline_p50_ms": self.settings_ms,
            "precision_candidates": self.precision,
            "segmenter_fp32_ms": self.segmenter_fp32_ms,
            "segmenter_chosen_ms": self.segmenter_chosen_ms,
            "segmenter_speedup_vs_fp32": (
                self.segmenter_fp32_ms / self.segmenter_chosen_ms
                if self.segmenter_chosen_ms > 0
                else None
            ),
            "closed_loop": self.closed_loop,
            "threads_alive": self.threads,
        }


def label(c: InferenceSettings) -> str:
    if c.provider == "openvino":
        return f"openvino threads={c.intra_op_threads} fused={'on' if c.fused else 'off'}"
    return (
        f"{c.provider} threads={c.intra_op_threads} spin={'on' if c.allow_spinning else 'off'} "
        f"opt={c.graph_optimization} fused={'on' if c.fused else 'off'}"
    )


def cycle_runner(p: Pipeline, view: np.ndarray) -> Callable[[], None]:
    """One cycle of models as the loop runs them (state first, so fused runs whole)."""
    q = np.zeros(N_JOINTS, dtype=np.float32)

    def one() -> None:
        p.set_state(q, 0.0)
        p.segment(view)
        p.threshold()
        p.control(q, 0.0)

    return one


def tune(
    bundle: Bundle,
    views: ViewSource,
    provider: str = "cpu",
    *,
    reps: int = 20,
    say: Callable[[str], None] | None = None,
    thread_options: tuple[int, ...] | None = None,
    closed_loop: ClosedLoop | None = None,
    attempts: int = CLOSED_LOOP_ATTEMPTS,
) -> Tuning:
    """Measure, gate, pick; see the module's docstring. Nothing it built outlives it."""
    say = say or (lambda s: None)
    cpu = cpu_info()
    threads_before = thread_count()
    threads = thread_options or tuple(sorted({1, cpu.cores}))
    view = views(bundle, [7])[0]
    settings_ms, best = _time_settings(bundle, provider, threads, view, reps)
    for engine, c in best.items():
        say(f"tuning: fastest {engine} fp32 setting {label(c)} ({settings_ms[label(c)]:.2f} ms)")
    cands = _candidates(bundle, views, best, cpu, say)
    _time_candidates(bundle, cands, view, reps)
    for c in cands:
        if c.admitted:
            say(f"tuning: {c.key}: segmenter {c.segmenter_ms:.2f}, models {c.pipeline_ms:.2f} ms")
    chosen, checked = _pick(bundle, cands, closed_loop, attempts, say)
    ref = cands[0]
    reason = _reason(chosen, ref, checked)
    tuning = Tuning(
        chosen=chosen.settings,
        segmenter_bytes=chosen.segmenter_bytes,
        reason=reason,
        settings_ms=settings_ms,
        candidates=cands,
        segmenter_fp32_ms=ref.segmenter_ms or 0.0,
        segmenter_chosen_ms=chosen.segmenter_ms or 0.0,
        cpu=cpu,
        closed_loop=checked,
        chosen_gate=chosen.gate,
        chosen_key=chosen.key,
    )
    gc.collect()
    tuning.threads = {"before": threads_before, "after_release": thread_count()}
    return tuning


def _time_settings(
    bundle: Bundle, provider: str, threads: tuple[int, ...], view: np.ndarray, reps: int
) -> tuple[dict[str, float], dict[str, InferenceSettings]]:
    """Each fp32 setting's p50 per cycle of models by label, and each engine's fastest."""
    from grasprt.runtime import openvino_backend

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
    by_label = {label(c): c for c in configs}
    pipes = {k: Pipeline(bundle, c) for k, c in by_label.items()}
    try:
        ms = interleaved_p50({k: cycle_runner(p, view) for k, p in pipes.items()}, reps)
    finally:
        del pipes
        gc.collect()
    best: dict[str, InferenceSettings] = {}
    for k, c in by_label.items():
        if c.provider not in best or ms[k] < ms[label(best[c.provider])]:
            best[c.provider] = c
    return ms, best


def _candidates(
    bundle: Bundle,
    views: ViewSource,
    best: dict[str, InferenceSettings],
    cpu: CpuInfo,
    say: Callable[[str], None],
) -> list[Candidate]:
    """Every engine x precision, the first being the reference (first engine's fp32);
    reduced ones gated (their ``gate``) or not offered (their ``verdict`` says why)."""
    from grasprt.runtime.quantize import gate_hinted, int8_candidates, unsupported_reason

    engines = list(best)
    out = [Candidate(f"{e} fp32", best[e]) for e in engines]
    ov = best.get("openvino")
    hints = (("bf16", ("amx_bf16", "avx512_bf16")), ("fp16", ("amx_fp16", "avx512_fp16")))
    for prec, flags in hints:
        key = f"openvino {prec}"
        if ov is None:
            out.append(Candidate(key, InferenceSettings(precision=prec), offered=False,
                                 verdict="OpenVINO is not installed (the openvino extra)"))
            continue
        cfg = replace(ov, precision=prec)
        why = None if cpu.has(*flags) else f"the CPU's flags show none of {', '.join(flags)}"
        why = why or unsupported_reason(prec, "openvino")
        if why:
            out.append(Candidate(key, cfg, offered=False, verdict=why))
            continue
        say(f"tuning: gating {key} on held-out frames ...")
        g = gate_hinted(bundle, cfg, views)
        out.append(Candidate(key, cfg, gate=g, verdict=g.verdict))
    say("tuning: int8 QDQ, calibrated on simulator frames, IoU gate on held-out frames ...")
    reduced = int8_candidates(bundle, views)
    # The variant with the best IoU (of those that pass, if any), on each engine.
    passing = [r for r in reduced if r.passed] or reduced
    r = max(passing, key=lambda x: x.iou)
    for e in engines:
        cfg = replace(best[e], precision="int8")
        out.append(Candidate(f"{e} int8 QDQ", cfg, segmenter_bytes=r.model, gate=r,
                             verdict=r.verdict))
    return out


def _time_candidates(
    bundle: Bundle, cands: list[Candidate], view: np.ndarray, reps: int
) -> None:
    """Segmenter alone and the cycle's models, interleaved, for each admitted one."""
    live = [c for c in cands if c.admitted]
    pipes = {c.key: _pipeline(bundle, c) for c in live}
    try:
        for p in pipes.values():
            np.copyto(p.image[0], view)
        seg = interleaved_p50({k: p.segmenter.run for k, p in pipes.items()}, reps)
        cyc = interleaved_p50({k: cycle_runner(p, view) for k, p in pipes.items()}, reps)
    finally:
        del pipes
        gc.collect()
    for c in live:
        c.segmenter_ms, c.pipeline_ms = seg[c.key], cyc[c.key]


def _pipeline(bundle: Bundle, c: Candidate) -> Pipeline:
    # The gate was measured already: the pipeline takes it instead of gating again.
    return Pipeline(bundle, c.settings, segmenter_bytes=c.segmenter_bytes, admitted=c.gate)


def _pick(
    bundle: Bundle,
    cands: list[Candidate],
    closed_loop: ClosedLoop | None,
    attempts: int,
    say: Callable[[str], None],
) -> tuple[Candidate, dict[str, Any]]:
    """The fastest admitted candidate whose closed-loop success holds up."""
    ref = cands[0]
    order = sorted((c for c in cands if c.admitted), key=lambda c: c.pipeline_ms or 1e9)
    if closed_loop is None:
        return order[0], {"checked": False, "why": "no simulator to check with"}
    say(f"tuning: closed-loop check, {ref.key}: {attempts} attempts on the simulator's clock ...")
    ref.success = _success(bundle, ref, closed_loop, attempts)
    out: dict[str, Any] = {"checked": True, "attempts": attempts, "reference": ref.key,
                           "reference_success": ref.success, "max_drop": MAX_SUCCESS_DROP,
                           "rejected": []}
    for c in order:
        if c is not ref:
            say(f"tuning: closed-loop check, {c.key}: the same {attempts} attempts ...")
            c.success = _success(bundle, c, closed_loop, attempts)
        assert c.success is not None
        if c.success >= ref.success - MAX_SUCCESS_DROP - 1e-9:
            out.update({"chosen": c.key, "chosen_success": c.success})
            return c, out
        out["rejected"].append({"candidate": c.key, "success": c.success})
    return ref, out  # not reached: the reference always passes against itself


def _success(bundle: Bundle, c: Candidate, closed_loop: ClosedLoop, attempts: int) -> float:
    p = _pipeline(bundle, c)
    try:
        with realtime.normal_priority():
            flags = closed_loop(p, attempts)
    finally:
        del p
        gc.collect()
    return sum(flags) / len(flags) if flags else 0.0


def _reason(chosen: Candidate, ref: Candidate, checked: dict[str, Any]) -> str:
    seg = chosen.segmenter_ms or 0.0
    ref_seg = ref.segmenter_ms or 0.0
    text = (
        f"{chosen.key} ({label(chosen.settings)}): the fastest admitted, models "
        f"{chosen.pipeline_ms:.2f} ms per cycle; segmenter {seg:.2f} ms vs {ref.key} "
        f"{ref_seg:.2f} ms ({ref_seg / seg if seg else 0:.2f}x)"
    )
    if chosen.gate is not None:
        text += f"; {chosen.verdict}"
    if checked.get("checked"):
        text += (
            f"; grasp success {chosen.success:.0%} vs {ref.success:.0%} fp32 on the same "
            f"{checked['attempts']} simulated attempts"
        )
        if checked["rejected"]:
            text += " (faster but rejected: " + ", ".join(
                f"{r['candidate']} {r['success']:.0%}" for r in checked["rejected"]
            ) + ")"
    return text
