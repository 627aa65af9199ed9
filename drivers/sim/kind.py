"""The simulated Sawyer as a robot kind: its drivers for one run (drivers/registry.py)."""

from __future__ import annotations

from grasprt.bundle import Bundle
from grasprt.clock import MonotonicClock, SimClock
from grasprt.config import RunConfig
from grasprt.drivers.sim.config import SimConfig, SimSettings
from grasprt.drivers.sim.factory import make_sim
from grasprt.types import Camera, Clock, Drivers, Heartbeat, Robot

# The paper's episode length in simulation.
SIM_MAX_STEPS = 150


def sim_drivers(cfg: RunConfig, bundle: Bundle, sim: SimConfig | None = None) -> Drivers:
    """World, robot and wrist camera for `cfg`; `sim` replaces what `[sim]` says
    (training draws its own dynamics gap). The true mask is drawn in the bundle's
    camera, the one its controller reads."""
    settings = cfg.robot_settings or SimSettings()
    clock: Clock = SimClock() if cfg.sim_clock else MonotonicClock()
    world, robot, sim_camera = make_sim(
        sim or settings.sim_config(), clock, cfg.seed, model_camera=bundle.camera
    )
    camera: Camera = sim_camera
    if cfg.camera not in (None, "sim"):
        from grasprt.drivers.factory import make_camera

        camera = make_camera(cfg.camera or "", clock=clock, calibration=cfg.calibration)
    arm: Robot = robot
    heartbeat: Heartbeat | None = None
    # The serial devices work beside the simulated arm as beside a real one: a bench
    # rehearsal of a gripper or a heartbeat monitor (and the fault campaign's unplugs).
    if cfg.gripper:
        from grasprt.drivers.hardware import external_gripper

        arm = external_gripper(robot, cfg.gripper)
    if cfg.heartbeat:
        from grasprt.drivers.heartbeat import SerialHeartbeat

        heartbeat = SerialHeartbeat(cfg.heartbeat)
    return Drivers(
        clock=clock,
        camera=camera,
        robot=arm,
        heartbeat=heartbeat,
        # Each episode its own seed, so one episode can be replayed alone.
        setup_episode=lambda n: world.reset(cfg.seed * 100_003 + n),
        table_z=world.table_z,
        default_max_steps=SIM_MAX_STEPS,
        world=world,
    )
