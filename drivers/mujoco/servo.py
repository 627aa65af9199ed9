"""The arm's joint-position servo, at the physics rate.

Intera's position mode takes a joint target and moves each joint there no faster than
its velocity limit times the speed ratio (`set_joint_position_speed`), its own 1 kHz
loop turning the way there into torques. Here a setpoint walks toward the target at
that capped speed (all joints scaled by one factor, keeping the direction in joint
space), with an acceleration cap and braking to stop on it, and a PD law with velocity
feed-forward turns the setpoint into torques, clipped at robosuite's effort limits by
the actuators' ctrlrange. Gravity is compensated by the scene (`gravcomp`), as the
Sawyer's controller does. The dynamics gap's command latency delays each target.
"""

from __future__ import annotations

from collections import deque

import numpy as np

# Gains per joint: stiff enough to track within a few milliradians at the capped speed,
# soft enough to stay stable at 500 Hz with the scene's armature.
KP = np.array([1500.0, 1500.0, 750.0, 750.0, 120.0, 120.0, 60.0])
KD = np.array([200.0, 200.0, 100.0, 100.0, 8.0, 8.0, 4.0])
# Acceleration cap, in capped speeds per second: full speed in 1/8 s.
ACCEL_PER_CAP = 8.0


class JointServo:
    def __init__(self, velocity: np.ndarray, speed_ratio: float, latency_s: float, dt: float):
        self.max_step = np.asarray(velocity, dtype=np.float64) * speed_ratio * dt
        self.latency = latency_s
        self.dt = dt
        self.setpoint = np.zeros(len(self.max_step))
        self.target = self.setpoint.copy()
        self._v = np.zeros_like(self.setpoint)
        self.close = False
        self._queue: deque[tuple[float, np.ndarray, bool]] = deque()

    def reset(self, q: np.ndarray) -> None:
        self.setpoint = np.asarray(q, dtype=np.float64).copy()
        self.target = self.setpoint.copy()
        self._v = np.zeros_like(self.setpoint)
        self.close = False
        self._queue.clear()

    def command(self, t_sent: float, q: np.ndarray, close: bool) -> None:
        self._queue.append((t_sent + self.latency, np.asarray(q, dtype=np.float64), close))

    def hold(self, q_now: np.ndarray) -> None:
        """Stop where the arm is: forget targets in flight."""
        self._queue.clear()
        self.target = np.asarray(q_now, dtype=np.float64).copy()
        self.setpoint = self.target.copy()
        self._v = np.zeros_like(self.setpoint)

    def torques(self, t: float, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Advance the setpoint by one step from world time `t`; the torques for it."""
        while self._queue and self._queue[0][0] <= t + 1e-9:
            _, self.target, self.close = self._queue.popleft()
        self.setpoint = self.setpoint + self._velocity() * self.dt
        return KP * (self.setpoint - q) + KD * (self._v - qd)

    def _velocity(self) -> np.ndarray:
        """The setpoint's velocity this step: toward the target at the capped speed
        (one factor for all joints), braking in time to stop on it, and changing by at
        most the acceleration cap: a setpoint that jumps to full speed would have the
        joints overshoot it to catch up."""
        cap = self.max_step / self.dt
        err = self.target - self.setpoint
        want = err / self.dt
        ratio = float(np.max(np.abs(want) / cap)) if err.any() else 0.0
        if ratio > 1.0:
            want = want / ratio
        brake = np.sqrt(2.0 * ACCEL_PER_CAP * cap * np.abs(err))
        want = np.clip(want, -brake, brake)
        dv = ACCEL_PER_CAP * cap * self.dt
        self._v = self._v + np.clip(want - self._v, -dv, dv)
        return self._v
