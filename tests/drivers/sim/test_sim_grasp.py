"""Gripper and grasp physics: hold a centred sphere, bump an off-centre one, release."""

from __future__ import annotations

import numpy as np
import pytest

from grasprt.drivers.sim import SimConfig
from grasprt.drivers.sim.grasp import CloseOutcome, classify_close, closed_on_sphere
from grasprt.profiles import SAWYER

SPEC = SAWYER.gripper
RADIUS = 0.0137 / 2


def at_tips(dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> np.ndarray:
    """A sphere centre relative to the fingertip point of a hand at the origin."""
    return np.array([dx, dy, SPEC.fingertip_offset + dz])


@pytest.mark.parametrize(
    ("centre", "outcome"),
    [
        (at_tips(), CloseOutcome.GRASP),
        (at_tips(dz=-0.012), CloseOutcome.GRASP),  # higher up between the pads
        (at_tips(dy=0.012), CloseOutcome.GRASP),  # off to one finger: it gets centred
        (at_tips(dx=0.012), CloseOutcome.BUMP),  # beside the pads
        (at_tips(dz=0.006), CloseOutcome.BUMP),  # below the tips
        (at_tips(dy=0.018), CloseOutcome.BUMP),  # under a finger
        (at_tips(dx=0.05), CloseOutcome.MISS),
        (at_tips(dz=-0.06), CloseOutcome.MISS),
    ],
)
def test_what_closing_does_depends_on_where_the_sphere_is(centre, outcome) -> None:
    assert classify_close(np.eye(4), SPEC, centre, RADIUS) is outcome


def test_fingers_rest_on_the_sphere_about_two_thirds_closed() -> None:
    assert closed_on_sphere(SPEC, 0.0137) == pytest.approx(1 - 0.0137 / SPEC.max_opening)
    assert 0.6 < closed_on_sphere(SPEC, 0.0137) < 0.7


def test_centred_close_then_lift_is_a_successful_grasp(make) -> None:
    sim = make(SimConfig(), seed=3)
    sphere = sim.world.sphere_position()
    sim.move_tips(sphere + np.array([0, 0, 0.06]), closed=False, steps=30)
    sim.move_tips(sphere, closed=False, steps=20)
    assert np.linalg.norm(sim.world.fingertip_position() - sphere) < 5e-4
    assert not sim.world.object_held()
    sim.move_tips(sphere, closed=True, steps=8)
    state = sim.robot.read_state()
    assert state.object_held is True
    assert state.gripper == pytest.approx(closed_on_sphere(SPEC, 0.0137))
    assert not sim.world.grasp_succeeded()  # not lifted yet
    sim.move_tips(sphere + np.array([0, 0, 0.10]), closed=True, steps=30)
    assert sim.world.grasp_succeeded()
    held = sim.world.sphere_position()
    assert held[2] > sphere[2] + 0.09
    truth = sim.world.grasp_truth()  # the evaluation's per-cycle trace
    assert truth.closing and truth.held and truth.lift_m == pytest.approx(held[2] - sphere[2])
    assert np.linalg.norm(held - sim.world.fingertip_position()) < 0.003
    # Opening drops it onto the table below where it was held.
    sim.move_tips(sphere + np.array([0, 0, 0.10]), closed=False, steps=5)
    dropped = sim.world.sphere_position()
    assert not sim.world.object_held() and not sim.world.grasp_succeeded()
    assert dropped[2] == pytest.approx(sphere[2])
    assert np.allclose(dropped[:2], held[:2])
    truth = sim.world.grasp_truth()
    assert not truth.closing and not truth.held and truth.lift_m == pytest.approx(0.0)
    assert sim.world.gripper_position() == 0.0


def test_closing_beside_the_sphere_bumps_it_and_holds_nothing(make) -> None:
    sim = make(SimConfig(), seed=3)
    sphere = sim.world.sphere_position()
    sim.move_tips(sphere + np.array([0, 0, 0.06]), closed=False, steps=30)
    beside = sphere + 0.013 * sim.world.hand_pose()[:3, 0]  # past the pad's edge
    sim.move_tips(beside, closed=False, steps=20)
    sim.move_tips(beside, closed=True, steps=8)
    assert not sim.world.object_held()
    assert sim.world.gripper_position() == 1.0
    pushed = np.linalg.norm(sim.world.sphere_position() - sphere)
    assert 0.002 <= pushed <= 0.008
    sim.move_tips(beside + np.array([0, 0, 0.1]), closed=True, steps=20)
    assert not sim.world.grasp_succeeded()


def test_closing_far_from_the_sphere_leaves_it_alone(make) -> None:
    sim = make(SimConfig(), seed=3)
    sphere = sim.world.sphere_position()
    sim.move_tips(sphere + np.array([0.05, 0.0, 0.0]), closed=False, steps=30)
    sim.move_tips(sphere + np.array([0.05, 0.0, 0.0]), closed=True, steps=8)
    assert np.array_equal(sim.world.sphere_position(), sphere)
    assert not sim.world.object_held()


def test_the_gripper_moves_at_finite_speed_after_the_latency(make) -> None:
    sim = make(SimConfig(), seed=3)
    latency = sim.world.config.gap.latency_s
    sim.send(sim.world.true_q(), closed=True)
    sim.clock.advance(latency)
    assert sim.world.gripper_position() == 0.0
    sim.clock.advance(SPEC.close_time / 2)
    assert sim.world.gripper_position() == pytest.approx(0.5)
    sim.clock.advance(SPEC.close_time)
    assert sim.world.gripper_position() == 1.0
    assert sim.robot.read_state().object_held is False
