"""The simulated arm's dynamics gap: latency, lag, velocity cap, hold, encoders, table."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from grasprt.drivers.sim import SimConfig, gap_preset
from grasprt.drivers.sim.config import GapConfig
from grasprt.drivers.sim.ik import solve_ik
from grasprt.profiles import SAWYER
from grasprt.types import JointCommand

IDEAL_BUT_LAGGING = GapConfig(
    latency_s=0.0, lag_tau_s=0.08, noise_std=0.0, bias_std=0.0, speed_ratio=1.0
)


def test_a_command_has_no_effect_before_the_latency(make) -> None:
    sim = make(SimConfig(gap=GapConfig(latency_s=0.03)))
    q0 = sim.world.true_q()
    sim.send(q0 + np.array([0, 0, 0, 0, 0, 0.05, 0]))
    sim.clock.advance(0.03)
    assert np.array_equal(sim.world.true_q(), q0)
    sim.clock.advance(0.005)
    moved = sim.world.true_q() - q0
    assert moved[5] > 0.0
    assert np.count_nonzero(moved) == 1


def test_joints_follow_a_first_order_lag(make) -> None:
    sim = make(SimConfig(gap=IDEAL_BUT_LAGGING))
    q0 = sim.world.true_q()
    step = np.zeros(7)
    step[6] = 0.01  # small enough never to meet the velocity cap
    sim.send(q0 + step)
    fractions = []
    for _ in range(40):
        sim.clock.advance(0.02)
        fractions.append((sim.world.true_q() - q0)[6] / step[6])
    # After one time constant: 1 - 1/e of the way, with no overshoot ever.
    assert fractions[3] == pytest.approx(1.0 - math.exp(-1.0), rel=1e-6)
    assert np.all(np.diff(fractions) > 0.0) and max(fractions) < 1.0
    assert fractions[-1] == pytest.approx(1.0 - math.exp(-10.0), rel=1e-6)


def test_velocity_cap_is_the_speed_ratio_of_the_limits_and_keeps_direction(make) -> None:
    gap = gap_preset("default")
    sim = make(SimConfig(gap=gap))
    q0 = sim.world.true_q()
    step = np.array([0.6, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0])
    sim.send(q0 + step)
    sim.clock.advance(gap.latency_s)
    cap = min(SAWYER.velocity[0], SAWYER.velocity[2]) * gap.speed_ratio
    prev, t_prev = sim.world.true_q(), sim.clock.now()
    for _ in range(5):
        sim.clock.advance(0.1)
        q = sim.world.true_q()
        speed = np.abs(q - prev) / (sim.clock.now() - t_prev)
        assert np.all(speed <= cap + 1e-9)
        assert speed[0] > 0.95 * cap  # far from the target: running at the cap
        assert (q - q0)[0] == pytest.approx((q - q0)[2], abs=1e-12)  # a straight line
        prev, t_prev = q, sim.clock.now()


def test_hold_stops_the_arm_and_drops_commands_in_flight(make) -> None:
    sim = make(SimConfig(gap=gap_preset("default")))
    q0 = sim.world.true_q()
    sim.send(q0 + 0.5)
    sim.clock.advance(0.2)
    moving = sim.world.true_q()
    assert not np.array_equal(moving, q0)
    sim.robot.hold()
    held = sim.world.true_q()
    sim.clock.advance(1.0)
    assert np.array_equal(sim.world.true_q(), held)
    # A command sent just before hold() is still in flight (latency): it must not land.
    sim.send(held + 0.2)
    sim.robot.hold()
    sim.clock.advance(1.0)
    assert np.array_equal(sim.world.true_q(), held)


def test_reported_joints_carry_a_per_episode_bias_and_noise(make) -> None:
    gap = gap_preset("default")
    sim = make(SimConfig(gap=gap), seed=5)
    true = sim.world.true_q()
    errors = np.array([sim.robot.read_state().q - true for _ in range(400)])
    bias = errors.mean(axis=0)
    assert np.allclose(bias, sim.world.bias, atol=4 * gap.noise_std / math.sqrt(400))
    assert np.max(np.abs(sim.world.bias)) > 0.0005
    assert errors.std(axis=0) == pytest.approx(np.full(7, gap.noise_std), rel=0.25)
    first_bias = sim.world.bias.copy()
    sim.world.reset(6)
    assert not np.allclose(sim.world.bias, first_bias)


def test_an_arm_told_to_stay_where_it_reads_itself_stays_despite_the_offset(make) -> None:
    # The joint controllers servo on the encoders: a command of the reported angles is
    # "hold here", whatever the offset. (A sim that took targets as true angles drifted
    # the arm by the offset on every command: 10 mrad a step per joint under `large`.)
    gap = replace(gap_preset("large"), noise_std=0.0)
    sim = make(SimConfig(gap=gap), seed=5)
    assert np.max(np.abs(sim.world.bias)) > 0.005
    start = sim.world.true_q()
    for _ in range(30):
        state = sim.robot.read_state()
        sim.robot.command(JointCommand(q=state.q, gripper_closed=False, stamp=state.stamp))
        sim.clock.advance(0.1)
    assert np.allclose(sim.world.true_q(), start, atol=1e-9)
    # And a commanded reading is what the encoders then report, the offset still there.
    goal = sim.robot.read_state().q + 0.02
    sim.robot.command(JointCommand(q=goal, gripper_closed=False, stamp=0.0))
    sim.clock.advance(3.0)
    assert np.allclose(sim.robot.read_state().q, goal, atol=1e-6)
    assert np.allclose(sim.world.true_q(), goal - sim.world.bias, atol=1e-6)


def test_the_none_gap_reports_the_truth(make) -> None:
    sim = make(SimConfig(gap=gap_preset("none")), seed=5)
    sim.send(sim.world.true_q() + 0.02)
    sim.clock.advance(0.1)
    state = sim.robot.read_state()
    assert np.array_equal(state.q, sim.world.true_q())
    assert state.stamp == pytest.approx(0.1)
    assert state.object_held is False and state.gripper == 0.0


def test_the_table_stops_the_hand(make) -> None:
    sim = make(SimConfig(gap=gap_preset("none")), seed=1)
    below = sim.world.sphere_position() + np.array([0.05, 0.0, -0.04])
    goal = solve_ik(sim.world.kin, sim.world.true_q(), below, frame="fingertips")
    assert sim.world.kin.poses(goal).fingertips[2] < sim.world.table_z - 0.02
    sim.send(goal)
    sim.clock.advance(3.0)
    q = sim.world.true_q()
    assert sim.world.kin.lowest_point_z(q) >= sim.world.table_z - 1e-9
    assert sim.world.fingertip_position()[2] == pytest.approx(sim.world.table_z, abs=2e-3)
    assert sim.world.table_contacts() > 0


def test_a_non_finite_command_is_refused_and_the_arm_holds(make) -> None:
    sim = make()
    q0 = sim.world.true_q()
    sim.send(q0 + 0.3)
    sim.clock.advance(0.1)
    bad = sim.world.true_q()
    bad[3] = math.nan
    sim.send(bad)
    here = sim.world.true_q()
    sim.clock.advance(1.0)
    assert sim.robot.refused == 1
    assert np.array_equal(sim.world.true_q(), here)


def test_the_world_only_moves_when_the_clock_does(make) -> None:
    sim = make(SimConfig(moving=True))
    first = sim.world.sphere_position()
    sim.send(sim.world.true_q() + 0.1)
    assert np.array_equal(sim.world.sphere_position(), first)
    assert sim.robot.read_state().stamp == 0.0
    sim.clock.advance(0.1)
    assert not np.array_equal(sim.world.sphere_position(), first)


def test_a_moving_target_rolls_and_stays_in_the_workspace(make) -> None:
    config = SimConfig(moving=True)
    sim = make(config, seed=9)
    x0, x1, y0, y1 = config.scene.workspace
    speed = config.scene.moving_speed
    positions = []
    for _ in range(240):
        sim.clock.advance(0.25)
        positions.append(sim.world.sphere_position())
    p = np.array(positions)
    assert np.all((p[:, 0] >= x0 - 1e-9) & (p[:, 0] <= x1 + 1e-9))
    assert np.all((p[:, 1] >= y0 - 1e-9) & (p[:, 1] <= y1 + 1e-9))
    assert np.allclose(p[:, 2], config.scene.table_z + config.scene.sphere_radius)
    steps = np.linalg.norm(np.diff(p[:, :2], axis=0), axis=1)
    assert np.all(steps <= speed * 0.25 + 1e-9)
    # 60 s at 2 cm/s is 1.2 m of rolling: it must have bounced off an edge.
    assert np.ptp(p[:, 0]) > 0.1 or np.ptp(p[:, 1]) > 0.1
    assert steps.sum() > 0.9 * speed * 60.0
