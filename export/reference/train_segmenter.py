"""Train the reference segmenter on composited images; score it on data it never saw.

Training is fully convolutional on crops of the 400x400 input (96 to 160 px, cut at
offsets that keep the 4x-smaller mask aligned), which costs a tenth of full frames on
a CPU. The figures come from full frames: the simulator's renders with their truth
masks (the simulator plays the real camera and is never trained on), and composites
over background families held out of training.

Run: ``python -m grasprt.export.reference.train_segmenter --out models/reference/work/segmenter.pt``
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

from grasprt.export.defaults import IMAGE_MEAN, IMAGE_STD
from grasprt.export.models import PAPER_WIDTHS, Segmenter
from grasprt.export.reference.backgrounds import (
    HELD_OUT_FAMILIES,
    TRAIN_FAMILIES,
    BackgroundSource,
    licences,
)
from grasprt.export.reference.segmenter_data import (
    RADIUS_RANGE_PX,
    composite_frames,
    crop_batch,
    sim_frames,
)

# Chosen by ONNX Runtime latency at 400x400 on the 2-core AVX2 build machine: the paper's
# 16/32/32/32 (2.45 GFLOP) costs 30-40 ms a call there; 8/16/16/16 (0.71 GFLOP) about
# 10 ms with 2 threads, 18 ms with 1. The layer structure is the paper's.
REFERENCE_WIDTHS = (8, 16, 16, 16)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
# Truth-mask cells under the sphere: the sim's wrist camera sees it as 1 to ~12 cells.
SIZE_BINS = ((1, 4, "1-4 cells"), (5, 12, "5-12 cells"), (13, 10**6, ">12 cells"))
POS_WEIGHT = 4.0  # the sphere is ~0.1 % of the mask cells; BCE alone would learn "empty"


@dataclass(frozen=True)
class Plan:
    steps: int
    batch: int
    crop_sizes: tuple[int, ...]
    lr: float
    sim_frames: int  # per clutter setting (0 and 4 distractors)
    composite_frames: int  # per set (held-out and seen families)
    checkpoint_every: int

    @staticmethod
    def of(quick: bool) -> Plan:
        if quick:
            return Plan(30, 8, (64, 96), 3e-3, 6, 8, 10**9)
        return Plan(3000, 32, (96, 128, 160), 2e-3, 150, 200, 250)


def recipe(quick: bool) -> dict:
    """What the trained network depends on besides the seed: a build's cached segmenter
    stage counts as done only for the same recipe (a pos_weight changed by hand once
    shipped a segmenter the committed recipe did not make)."""
    return {"pos_weight": POS_WEIGHT, "widths": list(REFERENCE_WIDTHS), **asdict(Plan.of(quick))}


def _normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> the float NCHW the network sees (the same as SegmenterGraph's)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weighted BCE plus a soft Dice over the batch: both push toward the rare positives."""
    weight = torch.tensor(POS_WEIGHT)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    p = torch.sigmoid(logits)
    dice = 1.0 - (2.0 * (p * target).sum() + 1.0) / (p.sum() + target.sum() + 1.0)
    return bce + 0.5 * dice


def predictor(net: Segmenter) -> Callable[[np.ndarray], np.ndarray]:
    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(net(_normalise(images)))[:, 0].numpy()

    return predict


@dataclass
class Scores:
    """Mask-cell counts at several thresholds, and per-frame detections."""

    tp: dict[float, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))
    fp: dict[float, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))
    fn: dict[float, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))
    frames: int = 0
    with_target: int = 0
    found: int = 0  # frames with the target where a predicted cell touches the truth
    false_alarm: int = 0  # frames with a predicted cell more than 2 cells from any truth
    by_size: dict[str, list[int]] = field(default_factory=dict)  # bin -> [tp, fn] at 0.5
    by_group: dict[str, list[int]] = field(default_factory=dict)  # group -> [tp, fp, fn] at 0.5

    def add(self, prob: np.ndarray, truth: np.ndarray, group: str | None = None) -> None:
        t = truth > 0.5
        for th in THRESHOLDS:
            p = prob >= th
            self.tp[th] += int(np.sum(p & t))
            self.fp[th] += int(np.sum(p & ~t))
            self.fn[th] += int(np.sum(~p & t))
        p = prob >= 0.5
        self.frames += 1
        if group is not None:
            counts = self.by_group.setdefault(group, [0, 0, 0])
            counts[0] += int(np.sum(p & t))
            counts[1] += int(np.sum(p & ~t))
            counts[2] += int(np.sum(~p & t))
        if p[~dilate(t, 2)].any():
            self.false_alarm += 1
        if t.any():
            self.with_target += 1
            self.found += bool((p & dilate(t, 1)).any())
            cells = int(t.sum())
            name = next(label for lo, hi, label in SIZE_BINS if lo <= cells <= hi)
            counts = self.by_size.setdefault(name, [0, 0])
            counts[0] += int(np.sum(p & t))
            counts[1] += int(np.sum(~p & t))

    def summary(self) -> dict:
        per_th = {
            f"{th:.1f}": {
                "precision": _ratio(self.tp[th], self.tp[th] + self.fp[th]),
                "recall": _ratio(self.tp[th], self.tp[th] + self.fn[th]),
            }
            for th in THRESHOLDS
        }
        return {
            "frames": self.frames,
            "frames_with_target": self.with_target,
            "precision": per_th["0.5"]["precision"],
            "recall": per_th["0.5"]["recall"],
            "by_threshold": per_th,
            "target_found_rate": _ratio(self.found, self.with_target),
            "false_alarm_frame_rate": _ratio(self.false_alarm, self.frames),
            "recall_by_size": {
                k: _ratio(tp, tp + fn) for k, (tp, fn) in sorted(self.by_size.items())
            },
            "by_background": {
                k: {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn)}
                for k, (tp, fp, fn) in sorted(self.by_group.items())
            },
        }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Boolean mask grown by `r` cells in every direction (a square neighbourhood)."""
    out = mask.copy()
    h, w = mask.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            src = mask[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
            out[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)] |= src
    return out


def score(
    predict: Callable[[np.ndarray], np.ndarray],
    frames: Iterable[tuple[np.ndarray, np.ndarray, object]],
    batch: int = 8,
) -> Scores:
    scores = Scores()
    images: list[np.ndarray] = []
    truths: list[np.ndarray] = []
    groups: list[str | None] = []

    def flush() -> None:
        for prob, truth, group in zip(predict(np.stack(images)), truths, groups, strict=True):
            scores.add(prob, truth, group)
        images.clear()
        truths.clear()
        groups.clear()

    for image, truth, meta in frames:
        images.append(image)
        truths.append(truth)
        groups.append(meta if isinstance(meta, str) else None)
        if len(images) == batch:
            flush()
    if images:
        flush()
    return scores


def evaluate(net: Segmenter, plan: Plan, seed: int) -> dict:
    """The held-out figures: sim frames (clean and cluttered), composites (unseen and seen)."""
    predict = predictor(net.eval())
    eval_seed = 10_000 + seed  # never the training stream's seed
    figures = {
        "sim": score(predict, sim_frames(plan.sim_frames, eval_seed, clutter=0)).summary(),
        "sim_clutter4": score(predict, sim_frames(plan.sim_frames, eval_seed, clutter=4)).summary(),
        "composites_held_out_backgrounds": score(
            predict,
            composite_frames(plan.composite_frames, eval_seed, BackgroundSource(HELD_OUT_FAMILIES)),
        ).summary(),
        "composites_training_families": score(
            predict,
            composite_frames(plan.composite_frames, eval_seed, BackgroundSource(TRAIN_FAMILIES)),
        ).summary(),
    }
    return figures


def _save(net: Segmenter, path: Path) -> None:
    """Write the checkpoint under a temporary name, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": net.state_dict(), "arch": list(net.widths)}, tmp)
    os.replace(tmp, path)


def ort_latency_ms(net: Segmenter, threads: Iterable[int] = (1, 2), runs: int = 20) -> dict:
    """Median ONNX Runtime time of one 400x400 call of the exported graph, per thread count."""
    import onnxruntime as ort

    from grasprt.export.models import SegmenterGraph
    from grasprt.export.onnx_export import export_segmenter

    proto = export_segmenter(SegmenterGraph(net.eval())).SerializeToString()
    image = np.random.default_rng(0).integers(0, 256, (1, 400, 400, 3), dtype=np.uint8)
    out = {}
    for n in threads:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(proto, opts, providers=["CPUExecutionProvider"])
        for _ in range(3):
            session.run(None, {"image": image})
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            session.run(None, {"image": image})
            times.append(time.perf_counter() - t0)
        out[f"{n}_threads"] = round(1000.0 * float(np.median(times)), 2)
    return out


def train_segmenter(out_ckpt: Path, *, seed: int = 0, quick: bool = False) -> dict:
    """Train, save the checkpoint at `out_ckpt` and its figures next to it; return the figures.

    `quick` is a smoke run (seconds, a useless network) for tests and dry runs of the recipe.
    """
    out_ckpt = Path(out_ckpt)
    plan = Plan.of(quick)
    threads = torch.get_num_threads()
    # One core: the controller's training shares the machine.
    torch.set_num_threads(1)
    try:
        return _train(out_ckpt, plan, seed, quick)
    finally:
        torch.set_num_threads(threads)


def _train(out_ckpt: Path, plan: Plan, seed: int, quick: bool) -> dict:
    started = time.monotonic()
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 0x5E6])
    source = BackgroundSource(TRAIN_FAMILIES)
    net = Segmenter(REFERENCE_WIDTHS)
    opt = torch.optim.Adam(net.parameters(), lr=plan.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=plan.lr, total_steps=plan.steps, pct_start=0.05
    )
    losses: list[float] = []
    seen = 0
    for step in range(1, plan.steps + 1):
        size = plan.crop_sizes[int(rng.integers(len(plan.crop_sizes)))]
        # The same number of pixels per batch whatever the crop size: steady step times.
        n = max(2, round(plan.batch * (128 / size) ** 2))
        images, masks = crop_batch(rng, source, n, size)
        net.train()
        loss = loss_fn(net(_normalise(images)), torch.from_numpy(masks))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        seen += n
        losses.append(loss.item())
        if step % 100 == 0 and not quick:
            recent = float(np.mean(losses[-100:]))
            elapsed = time.monotonic() - started
            print(f"step {step}/{plan.steps} loss {recent:.4f} {elapsed:.0f} s", flush=True)
        if step % plan.checkpoint_every == 0:
            _save(net, out_ckpt)  # a usable network before the end, for whoever waits on it
    _save(net, out_ckpt)
    train_s = time.monotonic() - started
    figures = evaluate(net, plan, seed)
    figures.update(
        {
            "widths": list(REFERENCE_WIDTHS),
            "paper_widths": list(PAPER_WIDTHS),
            "flops_400x400": net.flops(),
            "paper_flops_400x400": Segmenter(PAPER_WIDTHS).flops(),
            "mask_threshold": 0.5,
            "recommended_threshold": _best_threshold(figures),
            "loss": f"BCE(pos_weight={POS_WEIGHT}) + 0.5 soft Dice",
            "optimiser": f"Adam, one-cycle lr max {plan.lr}",
            "steps": plan.steps,
            "batch_pixels": f"{plan.batch} crops of 128x128 equivalent",
            "crop_sizes": list(plan.crop_sizes),
            "training_composites": seen,
            "epochs": "1 (every composite is new: fresh sphere render on a fresh background)",
            "sphere_radius_px": list(RADIUS_RANGE_PX),
            "train_background_families": list(TRAIN_FAMILIES),
            "held_out_background_families": list(HELD_OUT_FAMILIES),
            "photo_licences": licences(TRAIN_FAMILIES + HELD_OUT_FAMILIES),
            "final_loss": round(float(np.mean(losses[-50:])), 5),
            "train_wall_s": round(train_s, 1),
            "total_wall_s": round(time.monotonic() - started, 1),
            "seed": seed,
            "quick": quick,
            "machine": f"{platform.machine()} {os.cpu_count()} cores, torch threads 1",
        }
    )
    if not quick:
        figures["ort_latency_ms_400x400"] = ort_latency_ms(net)
        figures["total_wall_s"] = round(time.monotonic() - started, 1)
    metrics_path(out_ckpt).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _best_threshold(figures: dict) -> float:
    """The threshold with the best F1 on the sim and held-out composite frames together."""
    best, best_f1 = 0.5, -1.0
    keys = ("sim", "sim_clutter4", "composites_held_out_backgrounds")
    for th in THRESHOLDS:
        f1s = []
        for key in keys:
            pr = figures[key]["by_threshold"][f"{th:.1f}"]
            p, r = pr["precision"] or 0.0, pr["recall"] or 0.0
            f1s.append(2 * p * r / (p + r) if p + r > 0 else 0.0)
        if float(np.mean(f1s)) > best_f1:
            best, best_f1 = th, float(np.mean(f1s))
    return best


def metrics_path(ckpt: Path) -> Path:
    return ckpt.with_name(f"{ckpt.stem}_metrics.json")


def rescore_checkpoint(ckpt: Path, *, seed: int = 0, quick: bool = False) -> dict:
    """Score a trained checkpoint again (same held-out frames) and update its figures file."""
    from grasprt.export.checkpoints import load_segmenter

    ckpt = Path(ckpt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = load_segmenter(ckpt)
        figures = evaluate(net, Plan.of(quick), seed)
    finally:
        torch.set_num_threads(threads)
    path = metrics_path(ckpt)
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merged.update(figures)
    merged["recommended_threshold"] = _best_threshold(merged)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


@click.command()
@click.option("--out", "out", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=0)
@click.option("--quick", is_flag=True, help="a seconds-long smoke run")
@click.option("--rescore", is_flag=True, help="only score the checkpoint already at --out")
def main(out: Path, seed: int, quick: bool, rescore: bool) -> None:
    if rescore:
        figures = rescore_checkpoint(out, seed=seed, quick=quick)
    else:
        figures = train_segmenter(out, seed=seed, quick=quick)
    keys = ("sim", "sim_clutter4", "composites_held_out_backgrounds")
    for key in keys:
        f = figures[key]
        click.echo(f"{key}: precision {f['precision']} recall {f['recall']} ({f['frames']} frames)")


if __name__ == "__main__":
    main()
