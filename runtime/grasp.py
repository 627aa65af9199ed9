"""Grasp detection from what any robot reports: the gripper holds something, then lifts.

It uses only ``RobotState`` (measured joints, gripper, ``object_held``) and forward
kinematics, so the same check ends an episode on the simulator and on a real arm.
"""

from __future__ import annotations

from grasprt.kinematics import Kinematics
from grasprt.types import RobotState


class GraspDetector:
    def __init__(self, kin: Kinematics, lift_height: float = 0.05, confirm: int = 2) -> None:
        self.kin = kin
        self.lift_height = lift_height
        # Measured joints are noisy: one reading past the line is not yet a lift
        # (seen in eval: the loop declared 4.99 cm lifts a success).
        self.confirm = confirm
        self._grip_z: float | None = None
        self._above = 0

    def reset(self) -> None:
        self._grip_z = None
        self._above = 0

    @staticmethod
    def _holding(state: RobotState, gripper_closed: bool) -> bool:
        if not gripper_closed:
            return False
        if state.object_held is not None:
            return state.object_held
        # A gripper that cannot say: closed on something means it stopped short of
        # fully closed (an empty grip ends near 1.0).
        return 0.15 < state.gripper < 0.9

    def update(self, state: RobotState, gripper_closed: bool) -> bool:
        """True once the hand has stayed ``lift_height`` above where it first held the object
        for ``confirm`` cycles in a row."""
        if not self._holding(state, gripper_closed):
            self._grip_z = None
            self._above = 0
            return False
        z = float(self.kin.poses(state.q).hand[2, 3])
        if self._grip_z is None:
            self._grip_z = z
            return False
        self._above = self._above + 1 if z - self._grip_z >= self.lift_height else 0
        return self._above >= self.confirm
