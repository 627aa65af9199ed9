"""Train the reference controller by DAgger, the paper's way, scaled to a 2-core CPU.

Iteration 1 lets the expert act (beta = 1); iteration n lets policy n-1 act. Either way
every visited state is labelled with the expert's action, all labelled states are
pooled, and the policy is trained on the pool with Adam (lr 1e-3, batch 64) on the
squared L2 loss over the 8 outputs. The inputs are the simulator's true masks (the
segmenter is trained apart) and the measured joints, as the runtime will feed them.

Episodes run through :func:`grasprt.evaluation.evaluate.run_attempts`: the very loop,
limiter and clock of `grasprt run`, with the torch policy in the ONNX pipeline's place.
Sphere position, start pose, look and the dynamics-gap knobs are drawn per episode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grasprt.bundle import MASK_SIZE, N_JOINTS, STATE_SIZE
from grasprt.drivers.sim.config import GAP_PRESETS, GapConfig, SceneConfig, SimConfig
from grasprt.drivers.sim.expert import Expert, ExpertConfig
from grasprt.evaluation.evaluate import Attempt, eval_config, run_attempts, sim_expert
from grasprt.export.checkpoints import controller_normalisation, load_controller
from grasprt.export.defaults import DEFAULT_ACTION_SCALE, state_normalisation
from grasprt.export.models import Controller, ControllerGraph
from grasprt.profiles import SAWYER
from grasprt.types import Observation

MASK_CELLS = 100 * 100


@dataclass(frozen=True)
class DaggerConfig:
    # 16 was tried (seed 0, annealed): its chosen policy (14) validated 0.900, as policy
    # 11 of 12 iterations did, and scored 0.95/0.92/0.83/0.93 on the evaluation grid
    # against 0.91/0.93/0.83/0.95 (full, true masks, large gap, moving): 13 more
    # minutes of DAgger for no clear gain, so 12 stays.
    iterations: int = 12
    # Each iteration runs whole episodes until it has this many new labelled frames
    # (the paper: 1000 a iteration, ~50K in all; here a CPU's worth).
    frames_per_iteration: int = 2000
    max_steps: int = 150
    epochs: int = 15
    batch: int = 64
    lr: float = 1e-3
    action_scale: float = DEFAULT_ACTION_SCALE
    # Share of episodes with a rolling sphere: the policy must learn to follow one.
    moving_share: float = 0.3
    # Share of episodes whose dynamics-gap knobs all take one severity (`draw_gap`).
    # 0.5 was tried (16 iterations, an older sim): --gap large fell to 0.38 and the
    # default gap to 0.82, against 0.41 and 0.93 with knob-by-knob draws. 0.3 tried on
    # the current sim (seed 0, 1 thread): large-gap validation of policies 9-12
    # 0.80/0.65/0.60/0.65 (no share: 0.70/0.75/0.75/0.65); the chosen policy grasped
    # 41 of 50 grid positions under --gap large with true masks, the bundle's 42. Off.
    shared_gap_share: float = 0.0
    # How far the drawn gaps reach, as a multiple of the way from 'none' to 'large'
    # (speed ratio kept >= MIN_SPEED_RATIO). At 1.0 `--gap large` is the box's far
    # corner, where a policy has seen the fewest states like it. 1.3 tried (seed 0,
    # 1 thread): large-gap validation 0.75/0.75/0.75/0.50, the chosen policy 39 of the
    # 50 positions above. 1.0 stays.
    gap_reach: float = 1.0
    seed: int = 0
    # torch threads while training (results differ in the last bits between counts).
    threads: int = 2
    # Scale the controller's joint inputs by the expert's state statistics (see
    # `fit_normalisation`); False keeps the exporter's joint-range default.
    fit_normalisation: bool = True
    # The bundle gets the best of the last `select_from` policies on validation episodes
    # (`select_policy`), not simply the last: from one iteration to the next the policy's
    # success swings by 10-20 points (one run: 0.58, 0.45, 0.79, 0.95 acting success),
    # and the last one is never tried in the loop before it ships. 1 = the last policy.
    select_from: int = 4
    # Validation attempts per setting of `VALIDATION` and candidate, at random positions
    # and seeds of their own stream (never the evaluation grid's). At 20 a setting's
    # rate has a standard error near 0.1, the size of the differences it judges; 50
    # was tried (seed 0): it picked policy 10 (0.887) over 11 (0.867), and policy 10
    # scored no better on the evaluation grid (0.92/0.89/0.83/0.89 against
    # 0.91/0.93/0.83/0.95): the last policies are alike within the noise, so 20 stays.
    validation_attempts: int = 20
    # While a policy acts, each episode may add a constant per-joint push to every
    # executed command (rad; each episode draws the push's std uniformly up to this),
    # the labels staying the expert's clean actions (as DART does, Laskey et al. 2017).
    # Tried at 0.01 (12 iterations, seed 0): validation means of policies 9-12 fell from
    # 0.78-0.88 without a push to 0.62-0.78, so it is an option, off.
    perturb_rad: float = 0.0
    # The last iteration trains this many more epochs on the whole pool, the learning
    # rate falling linearly to a tenth (the paper runs 200 epochs an iteration; 15 here
    # leave the final policy underfitted: parked inside the grasp window with the expert
    # saying "close", it kept the fingers open in 7 of the 9 failures on 50 positions).
    final_epochs: int = 40
    # Each iteration's learning rate falls linearly to a tenth over its epochs (the
    # final epochs included), so every policy that acts, and every candidate, is a
    # settled one; False keeps the rate flat and anneals the final epochs alone. Seed 0,
    # against flat: the training loss ends higher (0.115 against 0.088), yet the
    # policies act better (acting success of policies 8-10: 0.75/0.67/0.93 against
    # 0.58/0.45/0.79; validation means of policies 9-12: 0.83-0.90 against 0.78-0.87).
    anneal_every_iteration: bool = True
    # Std (rad) of a random offset added to each training sample's joint inputs, drawn
    # afresh per sample and joint, the label unchanged. The labels are joint *changes*
    # that the limiter adds to the measured joints, so the right action does not depend
    # on an encoder offset: the augmentation teaches exactly that, and pushes the height
    # and centring judgement onto the mask, which no offset touches. Tried (seed 0,
    # 1 thread): validation means of policies 9-12 0.75-0.78 at 5 mrad and 0.55-0.77 at
    # 10 mrad, against 0.83-0.90 without, the large gap no better (0.65-0.75, 0.40-0.75):
    # the joints carry height and reach the mask cannot give at this resolution. Off.
    state_jitter_rad: float = 0.0
    # The expert's `regrip` (drivers/sim/expert.py): the frame after a student's let-go
    # with the sphere still between the fingers is labelled "close". Off here, as the
    # shipped kinematic recipe was built: the kinematic sim drops a released sphere at
    # once, so it rarely applies there; the MuJoCo stage turns it on.
    regrip: bool = False
    # Weight of the gripper output's squared error against each joint's (1 = the plain
    # L2 the recipe was built with).
    gripper_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.select_from <= self.iterations:
            raise ValueError("select_from must be between 1 and the iteration count")
        if not self.perturb_rad >= 0.0:
            raise ValueError("perturb_rad must be >= 0")
        if self.final_epochs < 0:
            raise ValueError("final_epochs must be >= 0")
        if not self.gap_reach > 0.0:
            raise ValueError("gap_reach must be > 0")
        if not self.state_jitter_rad >= 0.0:
            raise ValueError("state_jitter_rad must be >= 0")
        if not self.gripper_weight > 0.0:
            raise ValueError("gripper_weight must be > 0")

    @classmethod
    def quick(cls, seed: int = 0) -> DaggerConfig:
        """Tiny sizes for a smoke test of the recipe (a useless policy, in seconds)."""
        return cls(
            iterations=2,
            frames_per_iteration=30,
            max_steps=20,
            epochs=1,
            seed=seed,
            select_from=2,
            validation_attempts=1,
            final_epochs=1,
        )


# The settings a candidate policy is validated under, (name, gap preset, rolling
# sphere): the conditions the bundle is evaluated in, on true masks (control alone).
VALIDATION: tuple[tuple[str, str, bool], ...] = (
    ("default gap", "default", False),
    ("large gap", "large", False),
    ("moving", "default", True),
)


@dataclass
class Dataset:
    """Labelled states: packed true masks, measured states, expert actions."""

    masks: list[np.ndarray] = field(default_factory=list)  # each (1250,) uint8 packbits
    states: list[np.ndarray] = field(default_factory=list)  # each (8,) float32
    labels: list[np.ndarray] = field(default_factory=list)  # each (8,) float32

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, mask: np.ndarray, state: np.ndarray, label: np.ndarray) -> None:
        self.masks.append(np.packbits(np.asarray(mask).reshape(-1) > 0.5))
        self.states.append(np.asarray(state, dtype=np.float32).copy())
        self.labels.append(np.asarray(label, dtype=np.float32).copy())

    def save(self, path: Path) -> None:
        """The pool as one .npz (packed masks): what the policies were trained on, kept
        for diagnosis and offline training trials."""
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            masks=np.stack(self.masks),
            states=np.stack(self.states),
            labels=np.stack(self.labels),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Dataset:
        with np.load(path) as f:
            return cls(list(f["masks"]), list(f["states"]), list(f["labels"]))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        bits = np.unpackbits(np.stack(self.masks), axis=1, count=MASK_CELLS)
        masks = torch.from_numpy(bits.reshape(-1, 1, 100, 100).astype(np.float32))
        return (
            masks,
            torch.from_numpy(np.stack(self.states)),
            torch.from_numpy(np.stack(self.labels)),
        )


class TorchPolicy:
    """The torch policy as a :class:`grasprt.types.Policy`, on the simulator's true masks."""

    stages = ("torch_policy",)

    def __init__(self, policy: ControllerGraph | None) -> None:
        self.policy = policy
        self.mask = np.zeros((1, 1, MASK_SIZE, MASK_SIZE), dtype=np.float32)
        self.state = np.zeros((1, STATE_SIZE), dtype=np.float32)

    def observe(self, obs: Observation) -> None:
        if obs.truth_mask is None:
            raise RuntimeError("DAgger trains on the simulator's true masks: none came")
        np.copyto(self.mask[0, 0], obs.truth_mask)
        self.state[0, :N_JOINTS] = obs.q
        self.state[0, N_JOINTS] = obs.gripper

    def step(self, obs: Observation, mark: Callable[[str], None]) -> np.ndarray:
        self.observe(obs)
        out = self.act()
        mark("torch_policy")
        return out

    def act(self) -> np.ndarray:
        assert self.policy is not None
        with torch.no_grad():
            out = self.policy(torch.from_numpy(self.mask), torch.from_numpy(self.state))
        return out[0].numpy().astype(np.float32)


class LabellingPolicy(TorchPolicy):
    """In the controller's place during data collection: the expert labels every state,
    the policy (or, with none, the expert itself) acts. True masks only."""

    stages = ("label_and_act",)

    def __init__(
        self,
        expert: Expert,
        policy: ControllerGraph | None,
        data: Dataset,
        push: np.ndarray | None = None,
    ) -> None:
        super().__init__(policy)
        self.expert = expert
        self.data = data
        # Added to the policy's joint actions before they are executed (action units);
        # never to the labels.
        self.push = push

    def step(self, obs: Observation, mark: Callable[[str], None]) -> np.ndarray:
        self.observe(obs)
        label = np.clip(self.expert.action(obs.q), -1.0, 1.0)
        self.data.add(self.mask, self.state[0], label)
        out = label if self.policy is None else self.act()
        if self.policy is not None and self.push is not None:
            out[:N_JOINTS] += self.push
        mark("label_and_act")
        return out


# The slowest arm a drawn gap may have (fraction of the velocity limits).
MIN_SPEED_RATIO = 0.1


def draw_gap(rng: np.random.Generator, shared_share: float = 0.0, reach: float = 1.0) -> GapConfig:
    """A dynamics gap anywhere between the ideal arm and the 'large' preset (or `reach`
    times as far from the ideal arm, the speed ratio no lower than MIN_SPEED_RATIO).

    Knob by knob, an arm bad in every way at once is the corner of a 5-d box and is all
    but never drawn (all five above 80 %: 1 in 3000), yet `--gap large` is exactly that
    arm. So `shared_share` of the draws take one severity for every knob (the line from
    'none' to 'large'), the rest one per knob.
    """
    lo, hi = GAP_PRESETS["none"], GAP_PRESETS["large"]
    # No draw for the choice when there is none: the stream, and so a build, stays
    # the same as before the option existed.
    if shared_share > 0.0 and rng.random() < shared_share:
        severity = float(rng.uniform(0.0, 1.0))
        mix = {k: severity for k in asdict(lo)}
    else:
        mix = {k: float(rng.uniform(0.0, 1.0)) for k in asdict(lo)}
    knobs = {k: getattr(lo, k) + reach * mix[k] * (getattr(hi, k) - getattr(lo, k)) for k in mix}
    knobs["speed_ratio"] = max(knobs["speed_ratio"], MIN_SPEED_RATIO)
    return GapConfig(**knobs)


def collect(
    bundle: str,
    policy: ControllerGraph | None,
    cfg: DaggerConfig,
    rng: np.random.Generator,
    data: Dataset,
    robot: str = "sim",
) -> dict[str, Any]:
    """Run one iteration's episodes on simulated `robot`, each with its own gap and
    sphere; label all states."""
    x0, x1, y0, y1 = SceneConfig().workspace
    run_cfg = eval_config(bundle, robot=robot, max_steps=cfg.max_steps, gt_mask=True)
    before = len(data)
    outcomes: list[bool] = []
    while len(data) - before < cfg.frames_per_iteration:
        sim = SimConfig(
            gap=draw_gap(rng, cfg.shared_gap_share, cfg.gap_reach),
            moving=bool(rng.random() < cfg.moving_share),
        )
        attempt = Attempt(
            float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)), int(rng.integers(2**31))
        )
        push = None
        if policy is not None and cfg.perturb_rad > 0.0:
            std = rng.uniform(0.0, cfg.perturb_rad)
            push = (rng.normal(0.0, std, 7) / cfg.action_scale).astype(np.float32)

        def factory(run: Any, push: np.ndarray | None = push) -> LabellingPolicy:
            expert = sim_expert(run, ExpertConfig(regrip=cfg.regrip))
            return LabellingPolicy(expert, policy, data, push)

        (res,) = run_attempts(run_cfg, [attempt], policy=factory, sim=sim)
        outcomes.append(res.success)
    return {
        "frames": len(data) - before,
        "episodes": len(outcomes),
        "episode_success": float(np.mean(outcomes)) if outcomes else 0.0,
    }


def learning_rate(cfg: DaggerConfig, epoch: int, extra_epochs: int) -> float:
    """The rate for `epoch` (from 0) of an iteration of `cfg.epochs + extra_epochs`:
    flat, then falling linearly to a tenth at the last epoch over the extra epochs, or
    over all of them with `cfg.anneal_every_iteration`."""
    epochs = cfg.epochs + extra_epochs
    start = 0 if cfg.anneal_every_iteration else cfg.epochs
    if epoch < start:
        return cfg.lr
    return cfg.lr * (1.0 - 0.9 * (epoch - start + 1) / (epochs - start))


def jitter_joints(states: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """`states` with a fresh N(0, std) offset on each joint of each row (the gripper
    column untouched): an encoder offset the label must not depend on."""
    if std <= 0.0:
        return states  # no draw: the generator's stream, and so a build, stays as before
    offset = torch.randn(states.shape[0], 7, generator=gen, dtype=states.dtype) * std
    return torch.cat([states[:, :7] + offset, states[:, 7:]], dim=1)


def train(
    graph: ControllerGraph,
    data: Dataset,
    cfg: DaggerConfig,
    gen: torch.Generator,
    extra_epochs: int = 0,
) -> float:
    """`cfg.epochs` + `extra_epochs` passes of Adam over the pool, the learning rate
    falling linearly to a tenth over the extra epochs (over all of them with
    `cfg.anneal_every_iteration`); returns the last epoch's mean loss."""
    masks, states, labels = data.tensors()
    weight = torch.ones(labels.shape[1], dtype=labels.dtype)
    weight[N_JOINTS] = cfg.gripper_weight
    opt = torch.optim.Adam(graph.net.parameters(), lr=cfg.lr)
    graph.train()
    n = len(labels)
    last = 0.0
    for epoch in range(cfg.epochs + extra_epochs):
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, epoch, extra_epochs)
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, cfg.batch):
            idx = order[i : i + cfg.batch]
            pred = graph(masks[idx], jitter_joints(states[idx], cfg.state_jitter_rad, gen))
            # Weighted squared L2 over the 8 outputs, averaged over the batch.
            loss = (weight * (pred - labels[idx]) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        last = total / n
    graph.eval()
    return last


# No joint is scaled by less than this (rad): one the expert hardly moves must not turn
# encoder noise into large inputs.
MIN_JOINT_SCALE = 0.05


def fit_normalisation(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) from the expert's own states: each joint's mean and spread.

    The profile's joint ranges (the exporter's default) are 3-6 rad wide, where the grasp
    is decided by millimetres, a few mrad of joint angle: scaled by the range, that is a
    change in the fourth decimal of the input, which the state layer learns slowly. The
    states the task visits span a few tenths of a radian; scaled by that spread, the same
    millimetres are ten times larger. The gripper keeps 0..1 -> -1..1.
    """
    states = np.stack(data.states).astype(np.float64)
    offset = np.append(states[:, :7].mean(axis=0), 0.5)
    scale = np.append(np.maximum(states[:, :7].std(axis=0), MIN_JOINT_SCALE), 0.5)
    return offset.astype(np.float32), scale.astype(np.float32)


def validate(
    bundle: str, policy: ControllerGraph, cfg: DaggerConfig, robot: str = "sim"
) -> dict[str, float]:
    """Success of `policy` under each `VALIDATION` setting on simulated `robot`, true
    masks, the real loop.

    Positions and seeds come from a stream of their own, restarted for each call: every
    candidate meets the same attempts, and none is an attempt of the evaluation grid.
    """
    x0, x1, y0, y1 = SceneConfig().workspace
    rng = np.random.default_rng([cfg.seed, 0x5E1EC7, 0])
    run_cfg = eval_config(bundle, robot=robot, max_steps=cfg.max_steps, gt_mask=True)
    rates = {}
    for name, gap, moving in VALIDATION:
        attempts = [
            Attempt(
                float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)), int(rng.integers(2**31))
            )
            for _ in range(cfg.validation_attempts)
        ]
        results = run_attempts(
            run_cfg,
            attempts,
            policy=lambda run: TorchPolicy(policy),
            sim=SimConfig(gap=GAP_PRESETS[gap], moving=moving),
        )
        rates[name] = float(np.mean([r.success for r in results]))
    return rates


def pool_path(out_ckpt: Path) -> Path:
    return out_ckpt.with_name(f"{out_ckpt.stem}-pool.npz")


def candidate_path(out_ckpt: Path, iteration: int) -> Path:
    return out_ckpt.with_name(f"{out_ckpt.stem}-policy{iteration:02d}{out_ckpt.suffix}")


def select_policy(
    bundle: str,
    cfg: DaggerConfig,
    candidates: list[tuple[int, ControllerGraph]],
    say: Callable[[str], None],
) -> tuple[int, list[dict[str, Any]]]:
    """The candidate with the best mean validation success (ties: the later one)."""
    table = []
    for it, graph in candidates:
        rates = validate(bundle, graph, cfg)
        mean = float(np.mean(list(rates.values())))
        table.append({"policy": it, "success": rates, "mean": mean})
        say(
            f"validation, policy {it}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in rates.items())
            + f"; mean {mean:.3f}"
        )
    best = max(table, key=lambda row: (row["mean"], row["policy"]))
    return int(best["policy"]), table


def save_controller(graph: ControllerGraph, path: Path) -> None:
    """The network's weights and the input normalisation it was trained with (the
    exporter puts the latter into the ONNX graph)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    norm = {
        "offset": [float(x) for x in graph.state_offset.reshape(-1)],
        "scale": [float(x) for x in graph.state_scale.reshape(-1)],
    }
    torch.save({"state_dict": graph.net.state_dict(), "state_normalisation": norm}, tmp)
    tmp.replace(path)


def _load_graph(path: Path) -> ControllerGraph:
    norm = controller_normalisation(path)
    assert norm is not None  # save_controller always writes it
    return ControllerGraph(load_controller(path), *norm).eval()


def run_dagger(
    cfg: DaggerConfig,
    bundle: str,
    out_ckpt: Path,
    progress: Callable[[str], None] | None = None,
    on_iteration: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    """Train, save the controller checkpoint at `out_ckpt`, return the per-iteration history.

    `bundle` only supplies the loop's rate, camera and action scale (its networks are
    never run): it must use the action scale the controller is trained for.
    """
    say = progress or (lambda s: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng([cfg.seed, 0xDA6])
        offset, scale = state_normalisation(SAWYER)
        graph = ControllerGraph(Controller(), offset, scale).eval()
        data = Dataset()
        history = []
        started = time.monotonic()
        for it in range(1, cfg.iterations + 1):
            acting = None if it == 1 else graph
            got = collect(bundle, acting, cfg, rng, data)
            if it == 1 and cfg.fit_normalisation:
                # The expert acted alone: its states fix the input scaling for good.
                offset, scale = fit_normalisation(data)
                graph = ControllerGraph(Controller(), offset, scale).eval()
            extra = cfg.final_epochs if it == cfg.iterations else 0
            loss = train(graph, data, cfg, gen, extra)
            row = {
                "iteration": it,
                "actor": "expert" if it == 1 else f"policy {it - 1}",
                "episodes": got["episodes"],
                "frames": got["frames"],
                "aggregate": len(data),
                "actor_success": got["episode_success"],
                "loss": loss,
                "elapsed_s": round(time.monotonic() - started, 1),
            }
            history.append(row)
            # Every iteration's policy is kept: a cut-short run still leaves the latest.
            save_controller(graph, out_ckpt)
            data.save(pool_path(out_ckpt))
            if it > cfg.iterations - cfg.select_from:
                save_controller(graph, candidate_path(out_ckpt, it))
            if on_iteration is not None:
                on_iteration(history)
            say(
                f"iteration {it}: {row['actor']} acted, success {row['actor_success']:.2f}, "
                f"{row['frames']} new frames, {row['aggregate']} pooled, loss {loss:.4f}"
            )
        chosen, table = cfg.iterations, []
        if cfg.select_from > 1:
            first = cfg.iterations - cfg.select_from + 1
            candidates = [
                (it, _load_graph(candidate_path(out_ckpt, it)))
                for it in range(first, cfg.iterations + 1)
            ]
            chosen, table = select_policy(bundle, cfg, candidates, say)
            graph = dict(candidates)[chosen]
            save_controller(graph, out_ckpt)
            say(f"chosen: policy {chosen}")
        return {
            "config": asdict(cfg),
            "history": history,
            "frames": len(data),
            "chosen_policy": chosen,
            "validation": table,
            "state_normalisation": {
                "offset": graph.state_offset.reshape(-1).tolist(),
                "scale": graph.state_scale.reshape(-1).tolist(),
            },
        }
    finally:
        torch.set_num_threads(threads)
