"""An arm and a separately wired gripper, seen by the loop as one :class:`Robot`."""

from __future__ import annotations

import contextlib
import dataclasses
import logging

from grasprt.types import Gripper, JointCommand, Robot, RobotState

log = logging.getLogger(__name__)


class ArmWithGripper:
    """Arm joints go to ``robot``; gripper state and open/close go to ``gripper``.

    A gripper that can tell why it is untrustworthy (a ``fault()`` method, as
    :class:`grasprt.drivers.robotiq.RobotiqGripper` has) adds that reason to the
    state's ``fault``, so the loop's safety gate sees gripper trouble too.
    """

    def __init__(self, robot: Robot, gripper: Gripper) -> None:
        self.robot = robot
        self.gripper = gripper
        self.name = f"{robot.name}+{gripper.name}"
        self.joint_names = robot.joint_names

    def connect(self) -> None:
        self.robot.connect()
        try:
            self.gripper.connect()
        except BaseException:
            self.robot.disconnect()
            raise

    def disconnect(self) -> None:
        try:
            self.robot.disconnect()
        finally:
            self.gripper.disconnect()

    def read_state(self) -> RobotState:
        state = self.robot.read_state()
        fault = state.fault
        gripper_fault = getattr(self.gripper, "fault", None)
        if fault is None and callable(gripper_fault):
            fault = gripper_fault()
        return dataclasses.replace(
            state,
            gripper=self.gripper.position(),
            object_held=self.gripper.object_held(),
            fault=fault,
        )

    def command(self, cmd: JointCommand) -> None:
        self.robot.command(cmd)
        self.gripper.set_closed(cmd.gripper_closed)

    def hold(self) -> None:
        try:
            self.robot.hold()
        finally:
            gripper_hold = getattr(self.gripper, "hold", None)
            if callable(gripper_hold):
                # The arm is already holding; a gripper that fails to freeze must not
                # turn this call into an exception in the watchdog thread.
                with contextlib.suppress(Exception):
                    gripper_hold()
