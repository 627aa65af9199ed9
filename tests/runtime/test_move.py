"""Set-up moves through the limiter (runtime/move.py) on the simulated arm and its clock."""

from __future__ import annotations

import numpy as np
import pytest

from grasprt.clock import SimClock
from grasprt.config import LimiterSettings
from grasprt.drivers.sim.config import SimSettings
from grasprt.drivers.sim.factory import make_sim
from grasprt.drivers.sim.ik import solve_ik
from grasprt.errors import DriverError
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER
from grasprt.runtime.command_gate import CommandGate
from grasprt.runtime.limiter import Limiter, LimiterConfig
from grasprt.runtime.move import move_to, settle


class Recording:
    """The sim robot, keeping every command it is sent."""

    def __init__(self, robot) -> None:
        self.robot, self.sent = robot, []

    def __getattr__(self, name: str):
        return getattr(self.robot, name)

    def command(self, cmd) -> None:
        self.sent.append(np.array(cmd.q))
        self.robot.command(cmd)


def setup(gap: str = "default"):
    clock = SimClock()
    world, robot, _camera = make_sim(SimSettings(gap=gap).sim_config(), clock, 4)
    robot.connect()
    rec = Recording(robot)
    kin = Kinematics(SAWYER)
    limiter = Limiter(LimiterConfig.resolve(LimiterSettings(), 10.0, world.table_z), SAWYER, kin)
    return world, rec, CommandGate(rec), limiter, clock, kin


def test_reaches_the_target_in_small_steps() -> None:
    _world, robot, gate, limiter, clock, kin = setup()
    q0 = robot.read_state().q
    target = solve_ik(kin, q0, (0.55, 0.1, 0.25), frame="camera")
    q = move_to(robot, gate, limiter, clock, target, speed=0.1)
    assert np.abs(q - target).max() <= 0.002
    steps = np.abs(np.diff(np.vstack([q0, *robot.sent]), axis=0))
    # Never more than 10 % of a joint's velocity limit per 0.1 s cycle (plus the
    # encoders' noise in the first step, which starts from a measurement).
    assert np.all(steps <= np.asarray(SAWYER.velocity) * 0.1 / 10 + 0.005)
    assert len(robot.sent) > 10
    np.testing.assert_allclose(settle(robot, clock, 0.5, samples=5), target, atol=0.005)


def test_a_target_below_the_floor_is_held() -> None:
    world, robot, gate, limiter, clock, kin = setup(gap="none")
    q0 = robot.read_state().q
    low = solve_ik(kin, q0, (0.6, 0.0, world.table_z - 0.05), frame="fingertips")
    with pytest.raises(DriverError, match="floor stopped the arm"):
        move_to(robot, gate, limiter, clock, low, speed=0.3)
    assert gate.holds == 1
    assert kin.lowest_point_z(world.true_q()) > world.table_z


def test_an_unreachable_target_times_out_and_holds() -> None:
    _world, robot, gate, limiter, clock, _kin = setup(gap="none")
    q0 = robot.read_state().q
    with pytest.raises(DriverError, match="not reached in 2 s"):
        move_to(robot, gate, limiter, clock, q0 + 0.5, speed=0.01, timeout_s=2.0)
    assert gate.holds == 1
