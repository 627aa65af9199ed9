"""Grasp detection from what any robot reports: the gripper holds something, then lifts.

It uses only ``RobotState`` (measured joints, gripper, ``object_held``) and forward
kinematics, so the same check ends an episode on the simulator and on a real arm.
"""

from __future__ import annotations

from grasprt.kinematics import Kinematics
from grasprt.types import RobotState


class GraspDetector:
    def __init__(self, kin: Kinematics, lift_height: float = 0.05) -> None:
        self.kin = kin
        self.lift_height = lift_height
        self._grip_z: float | None = None

    def reset(self) -> None:
        self._grip_z = None

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
        """True once the hand has lifted ``lift_height`` since it first held the object."""
        if not self._holding(state, gripper_closed):
            self._grip_z = None
            return False
        z = float(self.kin.poses(state.q).hand[2, 3])
        if self._grip_z is None:
            self._grip_z = z
            return False
        return z - self._grip_z >= self.lift_height
