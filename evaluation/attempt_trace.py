"""Why an attempt failed, from the simulator's truth once a cycle.

A success rate says how often; the team needs to know what went wrong the rest of the
time, and tracing attempts by hand (docs/mujoco.md) does not scale. Each cycle the
evaluation notes what the gripper was told, whether the sphere was really held, and its
height (`SimWorld.grasp_truth`); at the attempt's end that trace names one outcome:

- ``success``: held and lifted 5 cm (the world's own verdict);
- ``fault``: the loop stopped on a fault;
- ``never_closed``: the gripper was never told to close;
- ``closed_on_nothing``: it closed, but the sphere was never between the fingers;
- ``let_go``: the sphere was held, then released with the gripper told to open;
- ``dropped``: held, then lost with the gripper still told to close (it slipped);
- ``held_not_lifted``: held at the end, below the 5 cm lift (the steps ran out).
"""

from __future__ import annotations

from dataclasses import dataclass

from grasprt.drivers.sim.world import GraspTruth

OUTCOMES = (
    "success",
    "fault",
    "never_closed",
    "closed_on_nothing",
    "let_go",
    "dropped",
    "held_not_lifted",
)


@dataclass
class AttemptTrace:
    closed_cycles: int = 0  # cycles the gripper was told to close
    held_cycles: int = 0  # cycles the sphere was between the fingers
    max_lift_held_m: float = 0.0  # the highest the sphere was lifted while held
    releases: int = 0  # held, then not held, with the gripper told to open
    slips: int = 0  # held, then not held, with the gripper still told to close
    held: bool = False  # at the last cycle
    last_loss: str | None = None  # how the last hold ended: "let_go" or "dropped"

    def observe(self, truth: GraspTruth) -> None:
        self.closed_cycles += truth.closing
        if truth.held:
            self.held_cycles += 1
            self.max_lift_held_m = max(self.max_lift_held_m, truth.lift_m)
        elif self.held:
            if truth.closing:
                self.slips += 1
            else:
                self.releases += 1
            self.last_loss = "dropped" if truth.closing else "let_go"
        self.held = truth.held

    def outcome(self, success: bool, fault: str | None) -> str:
        if success:
            return "success"
        if fault:
            return "fault"
        if self.held:
            return "held_not_lifted"
        if self.last_loss is not None:
            return self.last_loss  # the last hold's end: what finally lost the sphere
        return "closed_on_nothing" if self.closed_cycles else "never_closed"
