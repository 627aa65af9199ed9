"""`--robot mujoco`: the Sawyer in MuJoCo as a robot kind (drivers/registry.py).

Its settings are the simulator's (`[mujoco]` takes what `[sim]` takes: gap, moving,
clutter, camera_file), and its drivers are the simulator's robot and wrist camera
on a :class:`MujocoWorld`: the loop, the evaluation and the expert cannot tell which
physics they run on.
"""

from __future__ import annotations

from dataclasses import dataclass

from grasprt.bundle import Bundle
from grasprt.calibration.camera_info import load_camera_info
from grasprt.clock import MonotonicClock, SimClock
from grasprt.config import RunConfig
from grasprt.drivers.mujoco.world import MujocoWorld
from grasprt.drivers.sim.camera import SimWristCamera
from grasprt.drivers.sim.config import SimConfig, SimSettings
from grasprt.drivers.sim.factory import DEFAULT_CAMERA_FILE
from grasprt.drivers.sim.kind import SIM_MAX_STEPS
from grasprt.drivers.sim.robot import SimSawyer
from grasprt.errors import ConfigError
from grasprt.types import Camera, Clock, Drivers


@dataclass(frozen=True)
class MujocoSettings(SimSettings):
    """The `[mujoco]` section: the simulator's settings, on MuJoCo's physics."""

    # Draw the gripper's fingers where the wrist camera sees them (true: as the real
    # camera does). false shows what the physics alone does to a policy trained without them.
    fingers: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.fingers, bool):
            raise ConfigError("mujoco: fingers must be true or false")


def mujoco_drivers(cfg: RunConfig, bundle: Bundle, sim: SimConfig | None = None) -> Drivers:
    settings = cfg.robot_settings or MujocoSettings()
    config = sim or settings.sim_config()
    clock: Clock = SimClock() if cfg.sim_clock else MonotonicClock()
    world = MujocoWorld(config, clock, cfg.seed, fingers=settings.fingers)
    # Physics stays on the read path here: stepping MuJoCo from a thread of its own
    # beside the loop has not been measured.
    robot = SimSawyer(
        world, stall_state_after_s=config.faults.state_stall_after_s, background=False
    )
    camera: Camera = SimWristCamera(
        world,
        load_camera_info(config.camera_file or DEFAULT_CAMERA_FILE),
        bundle.camera,
        fps=config.camera.fps,
        noise_std=config.camera.noise_std,
        freeze_after_s=config.faults.camera_freeze_after_s,
    )
    return Drivers(
        clock=clock,
        camera=camera,
        robot=robot,
        setup_episode=lambda n: world.reset(cfg.seed * 100_003 + n),
        table_z=world.table_z,
        default_max_steps=SIM_MAX_STEPS,
        world=world,
        gripper=world.profile.gripper,
    )
