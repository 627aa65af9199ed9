"""Move the arm to a joint target slowly, every step through the safety limiter.

For set-up motions outside the grasping loop (hand-eye calibration's poses): each
cycle asks the limiter for a step toward the target no larger than `speed` of the
joints' velocity limits, and sends what it allows through a :class:`CommandGate`. A
limiter fault, a gate that refuses, or a target not reached in time holds the arm
and raises a DriverError.
"""

from __future__ import annotations

import numpy as np

from grasprt.errors import DriverError
from grasprt.runtime.command_gate import CommandGate
from grasprt.runtime.limiter import Limiter, LimitStatus
from grasprt.types import Clock, JointCommand, Robot


def move_to(
    robot: Robot,
    gate: CommandGate,
    limiter: Limiter,
    clock: Clock,
    target: np.ndarray,
    *,
    speed: float = 0.1,
    tolerance: float = 0.002,
    timeout_s: float = 60.0,
) -> np.ndarray:
    """Drive to `target` (rad); returns the measured joints once within `tolerance`."""
    rate = limiter.config.rate_hz
    step = np.asarray(limiter.profile.velocity, np.float64) * speed / rate
    target = np.asarray(target, np.float64)
    state = robot.read_state()
    limiter.reset(state.q, gripper_closed=state.gripper > 0.5)
    closed = state.gripper > 0.5
    start = due = clock.now()
    while True:
        state = robot.read_state()
        if state.fault:
            gate.hold("robot fault")
            raise DriverError(f"move: the robot reports {state.fault}")
        err = target - state.q
        if np.abs(err).max() <= tolerance:
            return state.q
        if clock.now() - start > timeout_s:
            gate.hold("move timed out")
            raise DriverError(
                f"move: target not reached in {timeout_s:g} s (largest joint error "
                f"{np.degrees(np.abs(err).max()):.1f} deg): held"
            )
        # The gripper's entry asks for it to stay as it is.
        action = np.append(np.clip(err / step, -1.0, 1.0), 1.0 if closed else -1.0)
        res = limiter.apply(state.q, action, step)
        if not res.ok or res.target is None:
            gate.hold("limiter fault")
            raise DriverError(f"move: the limiter refused the step ({res.fault}): held")
        if LimitStatus.FLOOR in res.flags:
            gate.hold("floor")
            raise DriverError("move: the limiter's floor stopped the arm on the way: held")
        if not gate.send(JointCommand(res.target, res.gripper_closed, clock.now())):
            limiter.note_command(None)
            raise DriverError(f"move: the command gate refused ({gate.reason}): held")
        limiter.note_command(res.target)
        due += 1.0 / rate
        clock.sleep_until(due)


def settle(robot: Robot, clock: Clock, seconds: float, samples: int = 10) -> np.ndarray:
    """Wait `seconds` for the arm to come to rest, then average `samples` joint readings
    (one per 20 ms) against the encoders' noise."""
    clock.sleep_until(clock.now() + seconds)
    readings = []
    for _ in range(samples):
        readings.append(robot.read_state().q)
        clock.sleep_until(clock.now() + 0.02)
    return np.mean(readings, axis=0)
