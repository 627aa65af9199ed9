"""The simulated arm moving between reads on a real-time clock (drivers/sim/integrator.py)."""

from __future__ import annotations

import threading
import time

import numpy as np

from grasprt.clock import MonotonicClock, SimClock
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.factory import make_sim
from grasprt.types import JointCommand


class ManualClock:
    """A clock that is not the simulator's (so the robot would integrate in the
    background) but moves only when told: the runs below are the same calls at the
    same times, with and without intermediate advances."""

    def __init__(self) -> None:
        self.t = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.t

    def sleep_until(self, t: float) -> None:
        with self._lock:
            self.t = max(self.t, t)


def _episode(extra_syncs: int) -> list[np.ndarray]:
    """Reads and commands each 0.1 s; `extra_syncs` advances of the world in between,
    as the integrator thread makes them."""
    clock = ManualClock()
    world, robot, _ = make_sim(SimConfig(), clock, 3)
    robot._integrator = None  # the syncs below stand in for its thread, deterministically
    robot.connect()
    states = []
    step = np.zeros(7)
    step[1], step[3] = 0.03, -0.03  # down toward the table: the floor check acts too
    for k in range(60):
        for i in range(extra_syncs):
            clock.sleep_until(0.1 * k + 0.1 * (i + 1) / (extra_syncs + 1))
            world.sync()
        clock.sleep_until(0.1 * (k + 1))
        s = robot.read_state()
        states.append(np.concatenate([s.q, [s.gripper, s.stamp]]))
        robot.command(JointCommand(s.q + step, k > 40, clock.now()))
    return states


def test_advancing_between_reads_changes_nothing_the_robot_reports() -> None:
    lazy, chunked = _episode(0), _episode(7)
    assert all(np.array_equal(a, b) for a, b in zip(lazy, chunked, strict=True))
    assert not np.array_equal(lazy[0], lazy[-1])  # the arm did move


def test_the_arm_moves_between_reads_on_a_real_time_clock_only() -> None:
    world, robot, _ = make_sim(SimConfig(), MonotonicClock(), 0)
    assert robot._integrator is not None
    robot.connect()
    try:
        deadline = time.monotonic() + 5.0
        start = world._n
        # No read, no command: only the integrator's thread can advance the world.
        while world._n == start and time.monotonic() < deadline:
            time.sleep(0.01)
        assert world._n > start
        assert robot._integrator.running
    finally:
        robot.disconnect()
    assert not robot._integrator.running
    _, sim_robot, _ = make_sim(SimConfig(), SimClock(), 0)
    assert sim_robot._integrator is None
