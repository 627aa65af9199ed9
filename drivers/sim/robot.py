"""The simulated Sawyer behind grasprt's Robot interface."""

from __future__ import annotations

import threading

import numpy as np

from grasprt.clock import SimClock
from grasprt.drivers.sim.integrator import BackgroundIntegrator
from grasprt.drivers.sim.world import SimWorld
from grasprt.errors import DriverError
from grasprt.profiles import SAWYER
from grasprt.types import JointCommand, RobotState


class SimSawyer:
    """Joint-position control of the simulated arm, with encoder bias and noise.

    Fault injection (for the loop's watchdog tests): with `stall_state_after_s`, the
    state stops updating that long after `connect()`: `read_state` keeps returning the
    last state it gave, stamp included, as a robot whose state topic went silent would.
    A command with a non-finite number is refused and the arm holds, as
    forward_command_controller drops such a command; it is counted in `refused`.

    On a real-time clock the arm moves on between reads, from a thread
    (drivers/sim/integrator.py), so a state read costs what a real arm's does: the
    newest state, not the simulation of the last period. `background` None: on any
    clock but the simulator's.
    """

    name = "sim"
    joint_names: tuple[str, ...] = SAWYER.joint_names

    def __init__(
        self,
        world: SimWorld,
        stall_state_after_s: float | None = None,
        background: bool | None = None,
    ) -> None:
        self.world = world
        if background is None:
            background = not isinstance(world.clock, SimClock)
        self._integrator = BackgroundIntegrator(world) if background else None
        self.stall_state_after_s = stall_state_after_s
        self.refused = 0
        self._connected_at: float | None = None
        self._last: RobotState | None = None
        self._lock = threading.Lock()

    def connect(self) -> None:
        self._connected_at = self.world.clock.now()
        self._last = None
        if self._integrator is not None:
            self._integrator.start()

    def disconnect(self) -> None:
        if self._integrator is not None:
            self._integrator.stop()
        self._connected_at = None

    def _require_connected(self) -> float:
        if self._connected_at is None:
            raise DriverError("sim robot: not connected (call connect() first)")
        return self._connected_at

    def read_state(self) -> RobotState:
        since = self._require_connected()
        with self._lock:
            stall = self.stall_state_after_s
            stalled = stall is not None and self.world.clock.now() - since >= stall
            if not (stalled and self._last is not None):
                self._last = self.world.reported_state()
            return self._last

    def command(self, cmd: JointCommand) -> None:
        self._require_connected()
        q = np.asarray(cmd.q, dtype=np.float64)
        if q.shape != (len(self.joint_names),):
            raise DriverError(
                f"sim robot: command needs {len(self.joint_names)} joints, got {q.shape}"
            )
        if not np.all(np.isfinite(q)):
            self.refused += 1
            self.world.hold()
            return
        self.world.command(q, cmd.gripper_closed)

    def hold(self) -> None:
        self.world.hold()
