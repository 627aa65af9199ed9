"""Builders for simulated worlds on a simulated clock, and helpers to drive them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from grasprt.clock import SimClock
from grasprt.drivers.sim import SimConfig, make_sim
from grasprt.drivers.sim.camera import SimWristCamera
from grasprt.drivers.sim.ik import solve_ik
from grasprt.drivers.sim.robot import SimSawyer
from grasprt.drivers.sim.world import SimWorld
from grasprt.types import JointCommand


@dataclass
class Sim:
    world: SimWorld
    robot: SimSawyer
    camera: SimWristCamera
    clock: SimClock

    def send(self, q: np.ndarray, closed: bool = False) -> None:
        """Send the arm to the *true* angles `q`: the arm servos on its offset encoders,
        so the command carries the offset, as if from a perfectly calibrated caller."""
        target = np.asarray(q, dtype=np.float64) + self.world.encoder_bias()
        self.robot.command(JointCommand(target, closed, self.clock.now()))

    def move_tips(self, target: np.ndarray, closed: bool, steps: int, dt: float = 0.1) -> None:
        """Servo the fingertips to `target`, hand pointing down, at the loop's 10 Hz."""
        goal = self.world.true_q()
        for _ in range(steps):
            goal = solve_ik(self.world.kin, goal, target, frame="fingertips")
            self.send(goal, closed)
            self.clock.advance(dt)


@pytest.fixture
def make() -> Callable[..., Sim]:
    def build(config: SimConfig | None = None, seed: int = 0) -> Sim:
        clock = SimClock()
        world, robot, camera = make_sim(config or SimConfig(), clock, seed)
        robot.connect()
        camera.connect()
        return Sim(world, robot, camera, clock)

    return build
