"""Joint dynamics of the simulated arm: latency, first-order lag, velocity cap, table floor.

A commanded target takes effect `latency_s` after it is sent. Each joint then moves
toward the target like a first-order system with time constant `lag_tau_s`, all
joints slowed by one common factor when any would exceed its capped velocity (the
motion keeps its direction in joint space). The wrist, hand and fingertips cannot go
below the table top: a step that would is shortened to touch it and counted as contact.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from grasprt.drivers.sim.config import GapConfig
from grasprt.kinematics import Kinematics

# A generous bound on how far (m) any checked point moves per radian of any joint:
# the Sawyer's reach is 1.26 m. It lets most steps skip forward kinematics entirely.
_REACH_M = 1.5
_SETTLED_RAD = 1e-9
_BISECTIONS = 8


class ArmDynamics:
    def __init__(self, kin: Kinematics, gap: GapConfig, table_z: float, dt: float) -> None:
        self.kin = kin
        self.table_z = table_z
        self.dt = dt
        self.latency = gap.latency_s
        self.alpha = 1.0 - math.exp(-dt / gap.lag_tau_s) if gap.lag_tau_s > 0 else 1.0
        self.max_step = np.asarray(kin.profile.velocity) * gap.speed_ratio * dt
        self.lower = np.asarray(kin.profile.lower)
        self.upper = np.asarray(kin.profile.upper)
        self.q = np.asarray(kin.profile.neutral, dtype=np.float64)
        self.target = self.q.copy()
        self.gripper_closed = False
        self.contacts = 0  # substeps shortened by the table since reset
        self._queue: deque[tuple[float, np.ndarray, bool]] = deque()
        self._clearance = 0.0  # lowest point above the table at the last FK check
        self._travel = math.inf  # bound on how far it may have come down since then
        # (q, target) of a step the table blocked completely: the same step would be
        # blocked again. Both arrays are replaced, never edited, so `is` tells they did not change.
        self._stuck: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self, q: np.ndarray) -> None:
        self.q = np.asarray(q, dtype=np.float64).copy()
        self.target = self.q.copy()
        self.gripper_closed = False
        self.contacts = 0
        self._queue.clear()
        self._travel = math.inf
        self._stuck = None

    def command(self, t_sent: float, q: np.ndarray, gripper_closed: bool) -> None:
        target = np.clip(np.asarray(q, dtype=np.float64), self.lower, self.upper)
        self._queue.append((t_sent + self.latency, target, bool(gripper_closed)))

    def hold(self) -> None:
        """Stop here: forget targets in flight, keep the gripper as it is."""
        self._queue.clear()
        self.target = self.q.copy()

    def settled(self) -> bool:
        return not self._queue and bool(np.array_equal(self.q, self.target))

    def step(self, t: float) -> None:
        """Integrate from world time t to t + dt."""
        # A few calls on 7-vectors a substep, their overhead the cost: ndarray methods,
        # not the np.* wrappers, and |move| taken from |delta| (the same numbers).
        while self._queue and self._queue[0][0] <= t + 1e-9:
            _, self.target, self.gripper_closed = self._queue.popleft()
        delta = self.target - self.q
        size = np.abs(delta)
        if size.max() < _SETTLED_RAD:
            if delta.any():
                self.q = self.target.copy()
            return
        move = delta * self.alpha
        size *= self.alpha  # |move|
        ratio = (size / self.max_step).max()
        if ratio > 1.0:
            move /= ratio
            size /= ratio
        self.q = self._above_table(move, float(size.sum()))

    def _above_table(self, move: np.ndarray, size: float) -> np.ndarray:
        """`size`: the sum of |move|."""
        bound = _REACH_M * size
        if self._travel + bound < self._clearance:
            self._travel += bound
            return self.q + move
        if self._stuck is not None and self._stuck[0] is self.q and self._stuck[1] is self.target:
            self.contacts += 1  # pressing on the table, as in the last step: no FK needed
            return self.q
        candidate = self.q + move
        low = self.kin.lowest_point_z(candidate) - self.table_z
        if low >= 0.0:
            self._clearance, self._travel = low, 0.0
            return candidate
        # Shorten the step to the largest fraction that stays on or above the table.
        lo, hi = 0.0, 1.0
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if self.kin.lowest_point_z(self.q + mid * move) >= self.table_z:
                lo = mid
            else:
                hi = mid
        self.contacts += 1
        self._travel = math.inf
        if lo == 0.0:
            self._stuck = (self.q, self.target)
            return self.q
        return self.q + lo * move
