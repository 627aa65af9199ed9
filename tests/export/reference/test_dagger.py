"""DAgger's parts: the labelled pool, the gap draw, one training pass, a tiny whole run."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

from grasprt.clock import SimClock
from grasprt.drivers.sim import SimConfig, make_sim
from grasprt.drivers.sim.config import GAP_PRESETS
from grasprt.drivers.sim.expert import Expert
from grasprt.export.checkpoints import controller_normalisation, load_controller
from grasprt.export.defaults import state_normalisation
from grasprt.export.models import Controller, ControllerGraph
from grasprt.export.reference.dagger import (
    MIN_JOINT_SCALE,
    MIN_SPEED_RATIO,
    VALIDATION,
    DaggerConfig,
    Dataset,
    LabellingPolicy,
    candidate_path,
    collect,
    draw_gap,
    fit_normalisation,
    jitter_joints,
    learning_rate,
    pool_path,
    run_dagger,
    train,
)
from grasprt.profiles import SAWYER
from grasprt.types import Observation

PLACEHOLDER = str(Path(__file__).resolve().parents[3] / "models" / "placeholder")


def test_pool_keeps_masks_states_and_labels_exactly() -> None:
    rng = np.random.default_rng(0)
    data = Dataset()
    masks = [(rng.random((100, 100)) > 0.97).astype(np.float32) for _ in range(3)]
    for i, m in enumerate(masks):
        data.add(m[None, None], np.full(8, i, np.float32), np.full(8, -i, np.float32))
    m, s, y = data.tensors()
    assert len(data) == 3 and m.shape == (3, 1, 100, 100)
    for i, mask in enumerate(masks):
        assert torch.equal(m[i, 0], torch.from_numpy(mask))
    assert s[:, 0].tolist() == [0, 1, 2] and y[:, 7].tolist() == [0, -1, -2]


def test_a_saved_pool_loads_back_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    data = Dataset()
    for _ in range(5):
        data.add(
            (rng.random((100, 100)) > 0.9).astype(np.float32),
            rng.normal(size=8).astype(np.float32),
            rng.uniform(-1, 1, 8).astype(np.float32),
        )
    data.save(tmp_path / "pool.npz")
    back = Dataset.load(tmp_path / "pool.npz")
    for a, b in zip(data.tensors(), back.tensors(), strict=True):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob("*.tmp*"))


def test_the_rate_stays_flat_then_falls_to_a_tenth_over_the_extra_epochs() -> None:
    cfg = DaggerConfig(epochs=15, lr=1e-3, anneal_every_iteration=False)
    assert [learning_rate(cfg, e, 0) for e in range(15)] == [1e-3] * 15
    rates = [learning_rate(cfg, e, 40) for e in range(55)]
    assert rates[:15] == [1e-3] * 15
    assert all(b < a for a, b in pairwise(rates[14:]))
    assert rates[-1] == pytest.approx(1e-4)


def test_annealing_every_iteration_settles_each_policy_at_a_tenth_of_the_rate() -> None:
    cfg = DaggerConfig(epochs=15, lr=1e-3, anneal_every_iteration=True)
    for extra in (0, 40):
        rates = [learning_rate(cfg, e, extra) for e in range(15 + extra)]
        assert rates[0] < 1e-3 and rates[-1] == pytest.approx(1e-4)
        assert all(b < a for a, b in pairwise(rates))


def test_gap_draws_lie_between_the_presets() -> None:
    rng = np.random.default_rng(1)
    lo, hi = GAP_PRESETS["none"], GAP_PRESETS["large"]
    draws = [draw_gap(rng) for _ in range(20)]
    for name in ("latency_s", "lag_tau_s", "noise_std", "bias_std"):
        values = [getattr(g, name) for g in draws]
        assert min(values) >= getattr(lo, name) and max(values) <= getattr(hi, name)
        assert len(set(values)) == 20  # drawn, not fixed


def test_gap_reach_carries_draws_past_the_large_preset_speed_kept_above_its_floor() -> None:
    rng = np.random.default_rng(2)
    lo, hi = GAP_PRESETS["none"], GAP_PRESETS["large"]
    draws = [draw_gap(rng, reach=1.5) for _ in range(200)]
    for name in ("latency_s", "lag_tau_s", "noise_std", "bias_std"):
        values = [getattr(g, name) for g in draws]
        span = getattr(hi, name) - getattr(lo, name)
        assert max(values) > getattr(hi, name)  # past 'large'
        assert max(values) <= getattr(lo, name) + 1.5 * span
    speeds = [g.speed_ratio for g in draws]
    assert min(speeds) == MIN_SPEED_RATIO  # 1 - 1.5 * 0.8 < 0: held at the floor
    assert max(speeds) <= 1.0
    # reach 1 is the plain box, draw for draw.
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [draw_gap(a) for _ in range(5)] == [draw_gap(b, reach=1.0) for _ in range(5)]


def test_shared_severity_draws_put_every_knob_at_the_same_fraction() -> None:
    rng = np.random.default_rng(4)
    lo, hi = GAP_PRESETS["none"], GAP_PRESETS["large"]
    knobs = ("latency_s", "lag_tau_s", "noise_std", "bias_std", "speed_ratio")
    severities = []
    for _ in range(10):
        g = draw_gap(rng, shared_share=1.0)
        fractions = [
            (getattr(g, k) - getattr(lo, k)) / (getattr(hi, k) - getattr(lo, k)) for k in knobs
        ]
        assert np.allclose(fractions, fractions[0])
        severities.append(fractions[0])
    assert len(set(np.round(severities, 9))) == 10  # one severity per draw, not fixed
    # Independent knobs otherwise: the fractions differ within a draw.
    g = draw_gap(np.random.default_rng(5), shared_share=0.0)
    fractions = [
        (getattr(g, k) - getattr(lo, k)) / (getattr(hi, k) - getattr(lo, k)) for k in knobs
    ]
    assert not np.allclose(fractions, fractions[0])


def test_joint_jitter_offsets_the_joints_alone_and_draws_nothing_when_off() -> None:
    states = torch.zeros(4000, 8)
    states[:, 7] = 0.25
    gen = torch.Generator().manual_seed(0)
    out = jitter_joints(states, 0.01, gen)
    assert torch.equal(out[:, 7], states[:, 7])  # the gripper reading stays as measured
    assert torch.equal(states, torch.zeros(4000, 8).index_fill_(1, torch.tensor([7]), 0.25))
    spread = out[:, :7].std(dim=0)
    assert torch.all((spread > 0.009) & (spread < 0.011))
    assert abs(float(out[:, :7].mean())) < 1e-3
    # Off: the very tensor back, and the generator's stream untouched.
    a, b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert jitter_joints(states, 0.0, a) is states
    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))


def test_training_lowers_the_squared_l2_loss_on_a_fixed_pool() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # as run_dagger trains: a busy 2-core box thrashes on two
    rng = np.random.default_rng(2)
    data = Dataset()
    for _ in range(32):
        mask = np.zeros((100, 100), np.float32)
        r, c = rng.integers(0, 100, 2)
        mask[r, c] = 1.0
        # A label the mask determines: where the blob is, as the expert's aim would be.
        label = np.array([r / 50 - 1, c / 50 - 1, 0, 0, 0, 0, 0, 1 if r > 50 else -1], np.float32)
        data.add(mask, np.asarray((*SAWYER.neutral, 0.0), np.float32), label)
    graph = ControllerGraph(Controller(), *state_normalisation(SAWYER))
    gen = torch.Generator().manual_seed(0)
    first = train(graph, data, DaggerConfig(epochs=1), gen)
    later = train(graph, data, DaggerConfig(epochs=6), gen)
    assert later < first


def test_the_gripper_weight_scales_the_gripper_term_of_the_loss_alone() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    data = Dataset()
    for _ in range(16):
        mask = (rng.random((100, 100)) > 0.99).astype(np.float32)
        data.add(mask, np.asarray((*SAWYER.neutral, 0.0), np.float32), rng.uniform(-1, 1, 8))
    graph = ControllerGraph(Controller(), *state_normalisation(SAWYER))
    masks, states, labels = data.tensors()
    with torch.no_grad():
        err = ((graph(masks, states) - labels) ** 2).mean(dim=0).double()
    # At a learning rate of 0 the weights stay put: the loss reported is the start's.
    gen = torch.Generator().manual_seed(0)
    losses = {w: train(graph, data, DaggerConfig(epochs=1, lr=0.0, gripper_weight=w), gen)
              for w in (1.0, 3.0)}  # fmt: skip
    assert losses[1.0] == pytest.approx(float(err.sum()), rel=1e-5)
    assert losses[3.0] - losses[1.0] == pytest.approx(2 * float(err[7]), rel=1e-4)
    with pytest.raises(ValueError, match="gripper_weight"):
        DaggerConfig(gripper_weight=0.0)
    with pytest.raises(ValueError, match="gripper_weight"):
        DaggerConfig(gripper_weight=float("nan"))


@pytest.mark.slow
def test_quick_run_labels_with_the_expert_then_lets_the_policy_act(tmp_path: Path) -> None:
    ckpt = tmp_path / "controller.pt"
    seen: list[int] = []
    result = run_dagger(
        DaggerConfig.quick(), PLACEHOLDER, ckpt, on_iteration=lambda h: seen.append(len(h))
    )
    history = result["history"]
    assert [h["actor"] for h in history] == ["expert", "policy 1"]
    assert seen == [1, 2]
    assert all(h["frames"] >= DaggerConfig.quick().frames_per_iteration for h in history)
    assert history[-1]["aggregate"] == result["frames"] == sum(h["frames"] for h in history)
    assert all(np.isfinite(h["loss"]) and 0.0 <= h["actor_success"] <= 1.0 for h in history)
    net = load_controller(ckpt)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    # The pool the policies were trained on is kept beside the checkpoint.
    assert len(Dataset.load(pool_path(ckpt))) == result["frames"]
    # The checkpoint carries the normalisation fitted on the expert's iteration.
    norm = controller_normalisation(ckpt)
    assert norm is not None
    assert np.allclose(norm[0], result["state_normalisation"]["offset"])
    assert not np.allclose(norm[1], state_normalisation(SAWYER)[1])
    # The last `select_from` policies were each tried on the same validation attempts;
    # the checkpoint is the best of them (ties: the later), not simply the last.
    table = result["validation"]
    assert [row["policy"] for row in table] == [1, 2]
    for row in table:
        assert set(row["success"]) == {name for name, _, _ in VALIDATION}
        assert row["mean"] == pytest.approx(np.mean(list(row["success"].values())))
    best = max(table, key=lambda row: (row["mean"], row["policy"]))
    assert result["chosen_policy"] == best["policy"]
    chosen = load_controller(candidate_path(ckpt, best["policy"]))
    for a, b in zip(net.parameters(), chosen.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_push_moves_the_executed_action_never_the_label() -> None:
    world, robot, _ = make_sim(SimConfig(), SimClock(), seed=3)
    robot.connect()
    torch.manual_seed(0)
    policy = ControllerGraph(Controller(), *state_normalisation(SAWYER)).eval()
    push = np.linspace(-0.2, 0.2, 7).astype(np.float32)
    mask = np.zeros((100, 100), np.float32)
    mask[40:50, 40:50] = 1.0
    q = robot.read_state().q

    clean, data = Dataset(), Dataset()
    plain = LabellingPolicy(Expert(world, 0.05), policy, clean)
    pushed = LabellingPolicy(Expert(world, 0.05), policy, data, push)
    obs = Observation(np.zeros((400, 400, 3), np.uint8), q, 0.0, mask)
    marks: list[str] = []
    a_plain, a_pushed = plain.step(obs, marks.append), pushed.step(obs, marks.append)
    assert marks == ["label_and_act"] * 2
    assert np.allclose(a_pushed[:7], a_plain[:7] + push) and a_pushed[7] == a_plain[7]
    assert np.array_equal(data.labels[0], clean.labels[0])  # the expert's, unpushed
    assert np.all(np.abs(data.labels[0]) <= 1.0)


def test_selection_needs_a_candidate_among_the_iterations() -> None:
    with pytest.raises(ValueError, match="select_from"):
        DaggerConfig(iterations=3, select_from=4)
    with pytest.raises(ValueError, match="select_from"):
        DaggerConfig(select_from=0)
    with pytest.raises(ValueError, match="perturb_rad"):
        DaggerConfig(perturb_rad=float("nan"))


def test_normalisation_is_fitted_to_the_states_with_a_floor_on_the_scale() -> None:
    rng = np.random.default_rng(3)
    data = Dataset()
    centre = np.array([0.1, -0.5, 0.2, 1.2, -0.3, 0.9, 3.0])
    spread = np.array([0.3, 0.2, 0.1, 0.25, 0.2, 0.15, 0.0])  # joint 6 never moves
    for _ in range(400):
        q = centre + spread * rng.standard_normal(7)
        data.add(np.zeros((100, 100)), np.append(q, rng.random()), np.zeros(8))
    offset, scale = fit_normalisation(data)
    assert np.allclose(offset[:7], centre, atol=0.05)
    assert np.allclose(scale[:6], spread[:6], rtol=0.15)
    assert scale[6] == pytest.approx(MIN_JOINT_SCALE)
    assert (offset[7], scale[7]) == (0.5, 0.5)


@pytest.mark.parametrize("regrip", [True, False])
def test_collection_labels_with_the_configured_regrip(monkeypatch, regrip: bool) -> None:
    from grasprt.export.reference import dagger

    seen: list[bool] = []
    real = dagger.LabellingPolicy.__init__

    def spy(self, expert: Expert, *args, **kwargs) -> None:
        seen.append(expert.config.regrip)
        real(self, expert, *args, **kwargs)

    monkeypatch.setattr(dagger.LabellingPolicy, "__init__", spy)
    cfg = DaggerConfig(frames_per_iteration=5, max_steps=5, regrip=regrip)
    got = collect(PLACEHOLDER, None, cfg, np.random.default_rng(0), Dataset())
    assert got["frames"] >= 5 and seen and set(seen) == {regrip}
