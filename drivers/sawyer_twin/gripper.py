"""The Intera electric parallel gripper, following the simulated gripper (no ROS).

What ``intera_interface.Gripper`` reads and sets, as signals: it must be calibrated
before it moves (calibration takes `CALIBRATION_S`), ``position_m`` below half the
travel closes it and above opens it (the sim's fingers are closed or open, at their
closing speed), and ``position_response_m`` / ``is_gripping`` / ``is_moving`` come from
the world, so a grasp is the simulator's own grasp physics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from grasprt.drivers.sawyer_twin.arm import TwinArm
from grasprt.drivers.sawyer_twin.io_device import Signal
from grasprt.profiles import SAWYER

DEVICE = "right_gripper"
# What GripperFactory reads from the device's config to pick the Gripper class.
DEVICE_CONFIG = {"props": {"type": "ElectricParallelGripper"}, "name": DEVICE}
MAX_POSITION_M = SAWYER.gripper.max_opening  # intera_interface.Gripper.MAX_POSITION
CALIBRATION_S = 1.0  # the SDK's calibrate() waits up to 5 s
HOLDING_FORCE_N = 20.0  # force_response_n while holding an object (Intera: a fixed force)


class ElectricGripper:
    def __init__(self, arm: TwinArm, usable: Callable[[], bool]) -> None:
        self.arm = arm
        self.world = arm.world
        self._usable = usable  # False while the robot is stopped: commands are ignored
        self._lock = threading.Lock()
        self._calibrated_at: float | None = None  # calibration done at this time
        self._position_cmd = MAX_POSITION_M
        self._speed = 0.3
        self._dead_zone = 0.005
        self._object_kg = 0.0

    def calibrated(self) -> bool:
        at = self._calibrated_at
        return at is not None and self.arm.now() >= at

    def calibrating(self) -> bool:
        at = self._calibrated_at
        return at is not None and self.arm.now() < at

    def position_m(self) -> float:
        return (1.0 - self.world.gripper_position()) * MAX_POSITION_M

    def signals(self) -> dict[str, Signal]:
        g = self.world.gripper_position()
        pos = (1.0 - g) * MAX_POSITION_M
        held = bool(self.world.object_held())
        # At rest: fully open, fully closed, or stopped on the object it holds.
        at_rest = (g >= 1.0 or held) if self.arm.gripper_closed else g <= 0.0
        moving = bool(self.calibrating() or not at_rest)
        ready = self.calibrated() and not moving
        return {
            "calibrate": Signal("bool", "output", False),
            "reboot": Signal("bool", "output", False),
            "go": Signal("bool", "output", True),
            "position_m": Signal("float", "output", self._position_cmd),
            "speed_mps": Signal("float", "output", self._speed),
            "dead_zone_m": Signal("float", "output", self._dead_zone),
            f"{DEVICE}_tip_object_kg": Signal("float", "output", self._object_kg),
            "position_response_m": Signal("float", "input", pos),
            "force_response_n": Signal("float", "input", HOLDING_FORCE_N if held else 0.0),
            "has_error": Signal("bool", "input", False),
            "is_calibrated": Signal("bool", "input", self.calibrated()),
            "is_gripping": Signal("bool", "input", held),
            "is_moving": Signal("bool", "input", moving),
            "is_ready": Signal("bool", "input", ready),
        }

    def write(self, name: str, value: Any) -> None:
        """One "set" from the SDK."""
        with self._lock:
            if name == "calibrate" and value:
                self._calibrate()
            elif name == "reboot" and value:
                self._calibrated_at = None  # a power cycle forgets the calibration
            elif name == "position_m":
                self._position(float(value))
            elif name == "speed_mps":
                self._speed = float(value)  # kept for reading back; the sim's speed is fixed
            elif name == "dead_zone_m":
                self._dead_zone = float(value)
            elif name == f"{DEVICE}_tip_object_kg":
                self._object_kg = float(value)

    def _calibrate(self) -> None:
        if self.calibrated() or self.calibrating():
            return
        # Calibration runs the fingers open, as the real one ends it.
        self.arm.set_gripper(False)
        self._position_cmd = MAX_POSITION_M
        self._calibrated_at = self.arm.now() + CALIBRATION_S

    def _position(self, metres: float) -> None:
        self._position_cmd = min(max(metres, 0.0), MAX_POSITION_M)
        if not self.calibrated() or not self._usable():
            return  # an uncalibrated or stopped gripper does not move
        self.arm.set_gripper(self._position_cmd < MAX_POSITION_M / 2.0)
