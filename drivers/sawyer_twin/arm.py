"""The simulated arm as Intera's joint controller presents it: position targets, a speed
ratio, a command timeout, and the gripper riding on the same command stream.

Pure logic over :class:`~grasprt.drivers.sim.world.SimWorld` (no ROS). Targets are in
the *reported* (encoder) frame, as on the robot: the world takes them that way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from grasprt.drivers.sim.world import SimWorld
from grasprt.profiles import SAWYER

# Intera's joint-position speed ratio until someone sets one (limb.py's default).
INTERA_DEFAULT_SPEED_RATIO = 0.3
# The joint command timeout until someone sets one: the figure Intera's SDK uses for
# its own exit_control_mode (no Sawyer default is documented).
INTERA_DEFAULT_TIMEOUT_S = 0.2
# A ratio of 0 would divide the sim's per-step cap by zero; Intera clips to [0, 1].
MIN_SPEED_RATIO = 1e-3


class TwinArm:
    """Joint targets for the world's arm, gated by the robot's state."""

    def __init__(self, world: SimWorld, can_move: Callable[[], bool]) -> None:
        self.world = world
        self.names = SAWYER.joint_names
        self._can_move = can_move
        self._lock = threading.Lock()
        # The last target sent to the world (reported frame); None: holding in place.
        self._target: np.ndarray | None = None
        self._gripper_closed = False
        self._last_command_t: float | None = None
        self.timeout_s = INTERA_DEFAULT_TIMEOUT_S
        self.timeouts = 0  # holds caused by the command timeout
        self.sdk_speed_ratio = INTERA_DEFAULT_SPEED_RATIO
        self.speed_ratio = 0.0
        self.set_speed_ratio(INTERA_DEFAULT_SPEED_RATIO)

    def now(self) -> float:
        return self.world.clock.now()

    # ---- settings -------------------------------------------------------------------

    def set_speed_ratio(self, ratio: float) -> float:
        """The SDK's ratio, capped by the dynamics gap's own (a slow arm stays slow).

        Mapped onto the sim's per-substep velocity cap, after integrating the past at
        the old speed, so a change takes effect from now on."""
        if not math.isfinite(ratio):
            return self.speed_ratio
        self.sdk_speed_ratio = float(np.clip(ratio, 0.0, 1.0))
        effective = max(min(self.sdk_speed_ratio, self.world.config.gap.speed_ratio), 0.0)
        effective = max(effective, MIN_SPEED_RATIO)
        w = self.world
        with w.lock:
            w.sync()
            w.arm.max_step = np.asarray(SAWYER.velocity) * effective * w.dt
        self.speed_ratio = effective
        return effective

    def set_command_timeout(self, seconds: float) -> bool:
        if not math.isfinite(seconds) or seconds <= 0:
            return False
        self.timeout_s = float(seconds)
        return True

    # ---- commands -------------------------------------------------------------------

    def position_command(self, positions: dict[str, float]) -> str | None:
        """Follow a POSITION_MODE command; the reason it was refused, or None.

        Joints the command leaves out keep their present target, as a partial command
        on the robot does."""
        unknown = [n for n in positions if n not in self.names]
        if unknown:
            return f"unknown joints {', '.join(unknown)}"
        if not all(math.isfinite(v) for v in positions.values()):
            self.hold()
            return "non-finite position (the arm holds)"
        if not self._can_move():
            return "robot not enabled"
        with self._lock:
            q = self._current_target()
            for i, name in enumerate(self.names):
                if name in positions:
                    q[i] = positions[name]
            self._send(q)
            self._last_command_t = self.now()
        return None

    def set_gripper(self, closed: bool) -> None:
        """The gripper shares the arm's command queue in the sim: resend the arm's target."""
        with self._lock:
            self._gripper_closed = bool(closed)
            self._send(self._current_target(), keep_hold=True)

    def hold(self) -> None:
        """Stop where the arm is: targets in flight are dropped."""
        with self._lock:
            self._target = None
            self._last_command_t = None
            self.world.hold()

    def check_timeout(self) -> bool:
        """Hold if no command came for `timeout_s` (called on every tick); True if it did."""
        with self._lock:
            last = self._last_command_t
            if last is None or self.now() - last < self.timeout_s:
                return False
            self._target = None
            self._last_command_t = None
            self.world.hold()
            self.timeouts += 1
            return True

    def reset_episode(self, seed: int, sphere_xy: tuple[float, float] | None) -> None:
        with self._lock:
            self.world.reset(seed, sphere_xy=sphere_xy)
            self._target = None
            self._last_command_t = None
            self._gripper_closed = False

    @property
    def gripper_closed(self) -> bool:
        return self._gripper_closed

    # ---- internals ------------------------------------------------------------------

    def _current_target(self) -> np.ndarray:
        if self._target is not None:
            return self._target.copy()
        # Holding: the world's true angles plus the encoder offset are where the
        # encoders say the arm is, so commanding them keeps it still.
        return self.world.true_q() + self.world.encoder_bias()

    def _send(self, q: np.ndarray, keep_hold: bool = False) -> None:
        self.world.command(q, self._gripper_closed)
        if not (keep_hold and self._target is None):
            self._target = q
