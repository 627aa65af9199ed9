"""What every real arm's run adds around its robot driver: the camera from `--camera`,
an external gripper from `--gripper`, the serial heartbeat from `--heartbeat`."""

from __future__ import annotations

import sys

from grasprt.config import RunConfig
from grasprt.errors import ConfigError
from grasprt.types import Clock, Drivers, Robot

# The paper's episode length on the real robot (it moves slower than the simulation).
REAL_MAX_STEPS = 250


def hardware_drivers(cfg: RunConfig, robot: Robot, clock: Clock) -> Drivers:
    from grasprt.drivers.factory import make_camera

    if cfg.gripper:
        robot = external_gripper(robot, cfg.gripper)
    heartbeat = None
    if cfg.heartbeat:
        from grasprt.drivers.heartbeat import SerialHeartbeat

        heartbeat = SerialHeartbeat(cfg.heartbeat)
    return Drivers(
        clock=clock,
        camera=make_camera(cfg.camera or "", clock=clock, calibration=cfg.calibration),
        robot=robot,
        heartbeat=heartbeat,
        setup_episode=operator_setup,
        default_max_steps=REAL_MAX_STEPS,
    )


def external_gripper(robot: Robot, spec: str) -> Robot:
    kind, _, port = spec.partition(":")
    if kind != "robotiq" or not port:
        raise ConfigError(f"--gripper {spec!r}: expected robotiq:/dev/ttyUSB0")
    from grasprt.drivers.arm_with_gripper import ArmWithGripper
    from grasprt.drivers.robotiq import RobotiqGripper

    return ArmWithGripper(robot, RobotiqGripper(port))


def operator_setup(n: int) -> None:
    if sys.stdin.isatty() and n > 0:
        input(f"episode {n}: place the sphere, then press Enter (Ctrl-C to stop) ")
