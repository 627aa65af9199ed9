"""Build the simulated robot and camera from one configuration."""

from __future__ import annotations

from pathlib import Path

from grasprt.calibration.camera_info import load_camera_info
from grasprt.drivers.sim.camera import SimWristCamera
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.robot import SimSawyer
from grasprt.drivers.sim.world import SimWorld
from grasprt.types import Clock, Intrinsics

DEFAULT_CAMERA_FILE = Path(__file__).with_name("wrist_camera.yaml")


def default_intrinsics() -> Intrinsics:
    """The simulated wrist camera: 400x400, 80 degrees, no distortion (= the model input)."""
    return load_camera_info(DEFAULT_CAMERA_FILE)


def make_sim(
    config: SimConfig, clock: Clock, seed: int = 0, *, model_camera: Intrinsics | None = None
) -> tuple[SimWorld, SimSawyer, SimWristCamera]:
    """A world reset with `seed`, and its robot and camera (not yet connected).

    `model_camera` is the camera the truth mask is projected with: pass the bundle's,
    so ``--gt-mask`` feeds the controller a mask in the projection it was trained on.
    None: `config.camera.model_camera_file`, else the sim's own wrist camera.
    """
    cam = config.camera
    intr = load_camera_info(config.camera_file or DEFAULT_CAMERA_FILE)
    if model_camera is None:
        model_camera = load_camera_info(cam.model_camera_file or DEFAULT_CAMERA_FILE)
    world = SimWorld(config, clock, seed)
    robot = SimSawyer(world, stall_state_after_s=config.faults.state_stall_after_s)
    camera = SimWristCamera(
        world,
        intr,
        model_camera,
        fps=cam.fps,
        noise_std=cam.noise_std,
        freeze_after_s=config.faults.camera_freeze_after_s,
    )
    return world, robot, camera
