"""The one-command recipe for the reference bundle: train, export, evaluate, document.

    python -m grasprt.export.reference.build --out models/reference [--quick]

1. the segmenter on composited images (``train_segmenter``), with its precision/recall;
2. the controller by DAgger on the simulator's true masks, the expert acting first;
3. both exported with ``export_bundle`` (ONNX, parity-checked, sha256s, provenance);
4. the bundle evaluated with the `grasprt eval` protocol (and the expert beside it);
5. the model card ``README.md`` and the DAgger plot written into the bundle directory.

Checkpoints and figures of each stage go to ``--work`` (outside the bundle, which the
exporter replaces whole); a stage whose outputs are already there for the same seed
and size is not run again, so an interrupted build resumes. ``--quick`` is a smoke run
with tiny sizes (a useless bundle, in a few minutes) for CI.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import torch

from grasprt.bundle import MANIFEST, load_bundle
from grasprt.config import RunConfig
from grasprt.drivers.sim.expert import ExpertConfig
from grasprt.evaluation.evaluate import AttemptsStopped, eval_config, evaluate
from grasprt.export.checkpoints import (
    controller_normalisation,
    load_controller,
    load_segmenter,
)
from grasprt.export.models import Segmenter
from grasprt.export.onnx_export import CONTROLLER_FILE, SEGMENTER_FILE, export_bundle
from grasprt.export.reference.dagger import DaggerConfig, run_dagger

# (name, eval settings): the "what must be shown", the bundle and the expert.
EVALS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("full pipeline, default gap", {}),
    ("true masks (--gt-mask)", {"gt_mask": True}),
    ("full pipeline, --gap large", {"gap": "large"}),
    ("full pipeline, --moving", {"moving": True}),
)
EXPERT_EVALS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("expert, default gap", {}),
    ("expert, --gap none", {"gap": "none"}),
    ("expert, --gap large", {"gap": "large"}),
    ("expert, --moving", {"moving": True}),
)
TARGETS = {
    "full pipeline, default gap": 0.90,
    "true masks (--gt-mask)": 0.92,
    "full pipeline, --gap large": 0.85,
    "full pipeline, --moving": 0.75,
}


def _stage_done(path: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The saved result of a stage run with the same settings, if there is one."""
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    # Compared as JSON reads it back (tuples come back as lists).
    return saved if saved.get("meta") == json.loads(json.dumps(meta)) else None


def build_segmenter(work: Path, seed: int, quick: bool, say: Callable[[str], None]) -> tuple:
    ckpt = work / "segmenter.pt"
    try:
        from grasprt.export.reference.train_segmenter import recipe, train_segmenter
    except ImportError as e:
        say(f"segmenter recipe unavailable ({e}): using random placeholder weights")
        torch.manual_seed(seed)
        return Segmenter(), None, {"placeholder": True, "why": str(e)}
    meta = {"seed": seed, "quick": quick, "recipe": recipe(quick)}
    done = _stage_done(work / "segmenter.json", meta)
    if done is None or not ckpt.exists():
        say("training the segmenter on composited images")
        figures = train_segmenter(ckpt, seed=seed, quick=quick)
        done = {"meta": meta, "figures": figures}
        (work / "segmenter.json").write_text(json.dumps(done, indent=2, default=str) + "\n")
    return load_segmenter(ckpt), ckpt, done["figures"]


def build_controller(
    work: Path, cfg: DaggerConfig, scaffold: Path, say: Callable[[str], None]
) -> tuple:
    ckpt = work / "controller.pt"
    # The teacher's settings too: a changed expert labels differently.
    meta = {**asdict(cfg), "expert": asdict(ExpertConfig())}
    done = _stage_done(work / "dagger.json", meta)
    if done is None or not ckpt.exists():
        say(f"DAgger: {cfg.iterations} iterations of {cfg.frames_per_iteration} frames")
        result = run_dagger(cfg, str(scaffold), ckpt, progress=say)
        done = {"meta": meta, **result}
        (work / "dagger.json").write_text(json.dumps(done, indent=2) + "\n")
    return load_controller(ckpt), ckpt, done


def scaffold_bundle(work: Path) -> Path:
    """A bundle of untrained networks: DAgger's loop needs its rate, camera and scale."""
    from grasprt.export.models import Controller

    torch.manual_seed(0)
    out = work / "scaffold"
    export_bundle(Segmenter((4, 4, 4, 4)), Controller(), out, force=True)
    return out


def _one_eval(cfg: RunConfig) -> dict[str, Any]:
    started = time.monotonic()
    s = evaluate(cfg).summary()
    s["wall_s"] = round(time.monotonic() - started, 1)
    return s


def run_evals(
    bundle: Path, quick: bool, seed: int, say: Callable[[str], None], jobs: int = 1
) -> dict[str, dict[str, Any]]:
    """Every setting of the figures table; `jobs` > 1 runs settings in parallel processes."""
    size = {"grid": 2, "repeats": 1, "max_steps": 40} if quick else {}
    todo = {
        name: eval_config(str(bundle), seed=seed, **size, **extra)
        for name, extra in EVALS + tuple((n, {**e, "expert": True}) for n, e in EXPERT_EVALS)
    }
    out: dict[str, dict[str, Any]] = {}

    def done(name: str, s: dict[str, Any]) -> None:
        if s.get("stopped"):
            # Partial figures must not reach eval.json or the model card.
            raise AttemptsStopped(s["stopped"], [])
        out[name] = s
        say(
            f"eval {name}: {s['successes']}/{s['attempts']} = {s['success_rate']:.3f} "
            f"(disagreements {s['detection_disagreements']}, {s['wall_s']} s)"
        )

    if jobs <= 1:
        for name, cfg in todo.items():
            done(name, _one_eval(cfg))
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # no forked torch or ORT threads
    with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = {name: pool.submit(_one_eval, cfg) for name, cfg in todo.items()}
        for name, fut in futures.items():
            done(name, fut.result())
    return out


def _fmt_rate(s: dict[str, Any]) -> str:
    return f"{s['success_rate']:.3f} ({s['successes']}/{s['attempts']})"


def figures_table(evals: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| setting | bundle | target | expert, same setting | loop-vs-truth disagreements |",
        "|---|---|---|---|---|",
    ]
    expert_for = {
        "full pipeline, default gap": "expert, default gap",
        "true masks (--gt-mask)": "expert, default gap",
        "full pipeline, --gap large": "expert, --gap large",
        "full pipeline, --moving": "expert, --moving",
    }
    for name, _ in EVALS:
        s, e = evals[name], evals[expert_for[name]]
        rows.append(
            f"| {name} | {_fmt_rate(s)} | >= {TARGETS[name]:.2f} | {_fmt_rate(e)} | "
            f"{s['detection_disagreements']} / {e['detection_disagreements']} |"
        )
    e = evals["expert, --gap none"]
    rows.append(f"| --gap none | - | - | {_fmt_rate(e)} | - / {e['detection_disagreements']} |")
    return "\n".join(rows)


def status_lines(evals: dict[str, dict[str, Any]]) -> str:
    """Which of the issue's targets this build meets, from its own evaluations."""
    missed = [
        f"{name} {evals[name]['success_rate']:.2f} < {target:.2f}"
        for name, target in TARGETS.items()
        if name in evals and evals[name]["success_rate"] < target
    ]
    if not missed:
        return "Status: every target in the figures table below is met."
    return "Status: **targets NOT met**: " + "; ".join(missed) + "."


def dagger_table(history: list[dict[str, Any]]) -> str:
    rows = [
        "| iteration | acting | episodes | new frames | pooled | acting success | loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in history:
        rows.append(
            f"| {h['iteration']} | {h['actor']} | {h.get('episodes', '-')} | {h['frames']} | "
            f"{h['aggregate']} | {h['actor_success']:.2f} | {h['loss']:.4f} |"
        )
    return "\n".join(rows)


def _schedule(cfg: dict[str, Any]) -> str:
    extra = int(cfg.get("final_epochs", 0))
    more = f" and the last iteration {extra} more" if extra > 0 else ""
    if cfg.get("anneal_every_iteration"):
        return f"{more}, the rate falling linearly to a tenth over each iteration's epochs"
    if extra > 0:
        return f"{more}, the rate falling to a tenth over those"
    return ""


def _push_line(cfg: dict[str, Any]) -> str:
    push = float(cfg.get("perturb_rad", 0.0))
    if push <= 0.0:
        return ""
    return (
        "\n  While a policy acts, each episode pushes every executed command by a constant"
        f"\n  per-joint offset (std drawn up to {push * 1000:.0f} mrad; labels stay the"
        "\n  expert's clean actions, as in DART)."
    )


def _gap_line(cfg: dict[str, Any]) -> str:
    reach = float(cfg.get("gap_reach", 1.0))
    line = "`large`" if reach == 1.0 else f"{reach:g} times as far as `large`"
    shared = float(cfg.get("shared_gap_share", 0.0))
    if shared > 0.0:
        line += f" ({shared:.0%} of the episodes: one severity for every knob)"
    return line


def _jitter_line(cfg: dict[str, Any]) -> str:
    jitter = float(cfg.get("state_jitter_rad", 0.0))
    if jitter <= 0.0:
        return ""
    return (
        "\n  In training, each sample's joint inputs get a fresh random offset (std"
        f"\n  {jitter * 1000:g} mrad a joint), the label unchanged: the labels are joint changes,"
        "\n  right whatever the encoders' offset, so the policy learns not to lean on it."
    )


def _selection_line(dagger: dict[str, Any]) -> str:
    table = dagger.get("validation") or []
    if not table:
        return "The bundle's controller is the last iteration's policy."
    cfg = dagger["config"]
    line = (
        f"The bundle's controller is **policy {dagger['chosen_policy']}**: of the last "
        f"{len(table)} iterations' policies, the best mean success on validation attempts "
        f"({cfg['validation_attempts']} per setting, true masks, random positions and "
        "seeds of their own, never the evaluation grid's; table below)."
    )
    return textwrap.fill(line, width=86, subsequent_indent="  ")


def validation_table(dagger: dict[str, Any]) -> str:
    table = dagger.get("validation") or []
    if not table:
        return ""
    names = list(table[0]["success"])
    rows = [
        "",
        "Policy selection (validation, true masks, "
        f"{dagger['config']['validation_attempts']} attempts per setting):",
        "",
        "| policy | " + " | ".join(names) + " | mean |",
        "|---" * (len(names) + 2) + "|",
    ]
    for row in table:
        mark = " (chosen)" if row["policy"] == dagger.get("chosen_policy") else ""
        rates = " | ".join(f"{row['success'][n]:.2f}" for n in names)
        rows.append(f"| {row['policy']}{mark} | {rates} | {row['mean']:.3f} |")
    return "\n".join(rows)


def _num(v: float | None) -> str:
    return "n/a (nothing predicted)" if v is None else f"{v:.3f}"


def _seg_lines(seg: dict[str, Any]) -> str:
    if seg.get("placeholder"):
        return f"- **Placeholder weights** (the segmenter recipe was not available: {seg['why']})."
    th = float(seg.get("recommended_threshold", 0.5))
    lines = []
    for key, value in seg.items():
        at = value.get("by_threshold", {}).get(f"{th:.1f}") if isinstance(value, dict) else None
        if at is not None:
            lines.append(
                f"- {key} ({value.get('frames', '?')} frames): precision "
                f"{_num(at.get('precision'))}, recall {_num(at.get('recall'))}"
            )
    lines.append(f"- mask threshold in the bundle: {th} (best F1 on the held-out sets)")
    lines.append("- full figures: `provenance.segmenter_figures` in `bundle.json`")
    return "\n".join(lines)


def model_card(
    seed: int,
    quick: bool,
    dagger: dict[str, Any],
    seg: dict[str, Any],
    evals: dict[str, dict[str, Any]],
    wall_s: float,
) -> str:
    cfg = dagger["config"]
    options = _push_line(cfg) + _jitter_line(cfg)
    first = next(iter(evals.values()))["settings"]
    protocol = (
        f"--grid {first['grid']} --repeats {first['repeats']} --max-steps {first['max_steps']}"
    )
    return f"""# grasprt reference bundle

The default bundle `grasprt run` loads: a segmenter and a closed-loop controller with the
paper's layer structure, trained in the simulator by the recipe in `export/reference/`.
{"**QUICK SMOKE BUILD: tiny sizes, not a usable policy.**" if quick else ""}

Rebuild from a clean checkout: `make reference` (the virtualenv with the `export`
extra, then the recipe, ~75 min on 2 cores), or with the extra installed:

    python -m grasprt.export.reference.build --out models/reference --seed {seed} --jobs 2

{status_lines(evals)}

## How it was made

- **Controller**: DAgger (iteration 1: the scripted expert acts; iteration n: policy n-1
  acts; every visited state labelled by the expert), {cfg["iterations"]} iterations of
  {cfg["frames_per_iteration"]} new frames each ({dagger["frames"]} labelled frames in all),
  Adam lr {cfg["lr"]}, batch {cfg["batch"]}, {cfg["epochs"]} epochs over the pool per
  iteration (warm-started){_schedule(cfg)}, squared L2 loss on the 8 outputs.
  Inputs: the simulator's true 100x100 masks and the measured joints + gripper, the
  joints scaled by the mean and spread of the expert's own states (iteration 1) rather
  than by the joint ranges (in the graph: `provenance.controller.state_normalisation`).
  Each episode draws the sphere position, start pose, look, and each dynamics-gap knob
  (latency, lag, noise, bias, speed) uniformly between the `none` preset and
  {_gap_line(cfg)}; {cfg["moving_share"]:.0%} of the episodes have a rolling sphere.{options}
  Episodes run through the same loop, limiter and simulated clock as `grasprt run`.
  `action_scale` = {cfg["action_scale"]} rad per unit.
  {_selection_line(dagger)}
- **Expert** (`drivers/sim/expert.py`): a finite-state machine with privileged state:
  s0 fingertips along a straight line to 6 cm above the sphere, s1 descend while
  re-centring, s2 close once the sphere sits between the pads (x within 5 mm, y within
  8 mm) and the tips are no more than 1 mm above its centre (the sim grasps within
  6 / 14 mm, from 2 mm above the centre down to the table), lift; reopen after a missed
  close or a drop (rise and re-acquire unless the sphere is still between the fingers);
  leads a rolling sphere by its velocity. The descent aims the tips 1 cm below the
  sphere's centre, past the table top: the limiter's floor (2 mm above the table,
  4.85 mm below the centre) stops them inside the grasp window, so the student's last
  steps stay firm instead of shrinking to a hover. The floor is judged on the
  *reported* joints, so an encoder offset moves it (millimetres under `--gap large`).
  At the floor the expert closes on the sideways window alone: how high the tips truly
  stop there hangs on that offset, which no student can see (a teacher that waited for
  the height taught a student that froze at the floor with open fingers). Where the
  floor stops the tips above the window, that close misses, the expert re-acquires,
  and fails too. **On hardware the
  limiter's `floor_z` must be set** (docs/sawyer.md), or this controller presses into
  the table.
- **Segmenter**: trained on composites of rendered spheres over procedural, simulator
  and photographic backgrounds (`export/reference/train_segmenter.py`).
{_seg_lines(seg)}

## Figures (`grasprt eval --robot sim {protocol}`, seed {seed})

Success = the simulator's truth (the sphere held and lifted at least 5 cm off the
table). The loop's own grasp detection (measured joints, gripper report) ends each
attempt; the last column counts attempts where the two disagree (bundle / expert).

{figures_table(evals)}

## DAgger per iteration (`dagger.png`)

{dagger_table(dagger["history"])}
{validation_table(dagger)}

Built on {platform.machine()} ({platform.processor() or "CPU"}), torch {torch.__version__},
{cfg.get("threads", 1)} torch thread(s) for DAgger. {_timing(seg, dagger, wall_s)}.
"""


def _timing(seg: dict[str, Any], dagger: dict[str, Any], wall_s: float) -> str:
    """Each stage's own time: a build resumes finished stages from its work directory,
    so the last invocation's wall time alone says little about the recipe's cost."""
    parts = []
    if "total_wall_s" in seg:
        parts.append(f"segmenter {seg['total_wall_s'] / 60:.0f} min")
    if dagger.get("history"):
        parts.append(f"DAgger {dagger['history'][-1]['elapsed_s'] / 60:.0f} min")
    parts.append(
        f"the last invocation (stages it did not resume, export, evaluations) {wall_s / 60:.0f} min"
    )
    return "Stage times: " + ", ".join(parts)


def install(staged: Path, out: Path) -> None:
    """Copy the exported bundle's files into `out`, leaving anything else there alone
    (the segmenter recipe keeps its working files under models/reference/work)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST, SEGMENTER_FILE, CONTROLLER_FILE):
        shutil.copyfile(staged / name, out / f".{name}.tmp")
    # The manifest last: a reader never sees a manifest whose models are not there yet.
    for name in (SEGMENTER_FILE, CONTROLLER_FILE, MANIFEST):
        os.replace(out / f".{name}.tmp", out / name)
    load_bundle(out)


def build(
    out: Path, work: Path, seed: int, quick: bool, say: Callable[[str], None], jobs: int = 1
) -> dict[str, Any]:
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    seg_net, seg_ckpt, seg_figures = build_segmenter(work, seed, quick, say)
    cfg = DaggerConfig.quick(seed) if quick else DaggerConfig(seed=seed)
    ctrl_net, ctrl_ckpt, dagger = build_controller(work, cfg, scaffold_bundle(work), say)
    threshold = float(seg_figures.get("recommended_threshold", 0.5))
    checkpoints = {"controller": ctrl_ckpt}
    if seg_ckpt is not None:
        checkpoints["segmenter"] = seg_ckpt
    say(f"exporting to {out}")
    staged = work / "bundle"
    export_bundle(
        seg_net,
        ctrl_net,
        staged,
        action_scale=cfg.action_scale,
        mask_threshold=threshold,
        checkpoints=checkpoints,
        provenance={
            "recipe": "python -m grasprt.export.reference.build"
            + (" --quick" if quick else "")
            + f" --seed {seed}",
            "quick": quick,
            "dagger": {"config": dagger["config"], "history": dagger["history"]},
            "segmenter_figures": seg_figures,
        },
        force=True,
        seed=seed,
        state_norm=controller_normalisation(ctrl_ckpt),
    )
    install(staged, out)
    evals = run_evals(out, quick, seed, say, jobs)
    (out / "eval.json").write_text(json.dumps(evals, indent=2, default=str) + "\n")
    from grasprt.export.reference.plots import plot_dagger

    finals = {name: evals[name]["success_rate"] for name, _ in EVALS}
    plot_dagger(
        dagger["history"],
        out / "dagger.png",
        finals,
        dagger.get("validation", ()),
        dagger.get("chosen_policy"),
    )
    wall = time.monotonic() - started
    (out / "README.md").write_text(model_card(seed, quick, dagger, seg_figures, evals, wall))
    return evals


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("models/reference"))
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoints and stage results. [default: build/<out name>-work]",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="Tiny sizes: a smoke test of the recipe.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Evaluations run in parallel.")
def main(out: Path, work: Path | None, seed: int, quick: bool, jobs: int) -> None:
    """Rebuild the reference bundle: segmenter, DAgger controller, export, eval, model card."""

    def say(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)

    work = work or Path("build") / f"{out.name}-work{'-quick' if quick else ''}"
    try:
        evals = build(out, work, seed, quick, say, jobs)
    except AttemptsStopped as e:
        # Finished stages stay in the work directory: the next build resumes there.
        say(f"{e}: finished stages are kept in {work}")
        sys.exit(128 + int(signal.Signals[e.signal_name]))
    click.echo(figures_table(evals))


if __name__ == "__main__":
    main()
