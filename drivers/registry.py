"""Robot kinds by name: what `--robot` offers, and the drivers each builds for a run.

A robot kind is one :class:`RobotKind` entry: its name, the profile it drives (a
bundle's ``robot`` must name it), its own settings dataclass (the ``[name]`` section of
a config file) and the function that builds its drivers, not yet connected. Adding an
arm is its driver, its profile (grasprt/profiles.py) and one entry here. Builders are
imported when used, so a robot PC without ROS can still run the simulator.

Cameras register the same way, in drivers/factory.py (``--camera KIND:...``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grasprt.bundle import Bundle
from grasprt.config import RunConfig
from grasprt.errors import ConfigError
from grasprt.types import Drivers


@dataclass(frozen=True)
class RobotKind:
    name: str
    summary: str  # one line for --help
    profile: str  # the RobotProfile it drives; a bundle's `robot` must name it
    settings: str  # "module:Class" of its settings dataclass, the [name] section
    build: str  # "module:function" (cfg, bundle) -> Drivers
    # Runs on the simulator's clock, knows the true mask, brings its own camera.
    simulated: bool = False

    def settings_type(self) -> type:
        return resolve(self.settings)

    def builder(self) -> Callable[..., Drivers]:
        """(cfg, bundle) -> Drivers; a simulated kind's takes a third, `sim`: a
        SimConfig in place of its settings' (training draws its own per episode)."""
        return resolve(self.build)


ROBOTS: dict[str, RobotKind] = {
    k.name: k
    for k in (
        RobotKind(
            "sim",
            "the simulated Sawyer: kinematic arm, dynamics gap, rendered wrist camera",
            profile="sawyer",
            settings="grasprt.drivers.sim.config:SimSettings",
            build="grasprt.drivers.sim.kind:sim_drivers",
            simulated=True,
        ),
        RobotKind(
            "mujoco",
            "the Sawyer in MuJoCo: robosuite's arm and gripper, contact physics (make mujoco)",
            profile="sawyer",
            settings="grasprt.drivers.mujoco.kind:MujocoSettings",
            build="grasprt.drivers.mujoco.kind:mujoco_drivers",
            simulated=True,
        ),
        RobotKind(
            "sawyer",
            "a Rethink Sawyer through the Intera SDK (ROS 1)",
            profile="sawyer",
            settings="grasprt.drivers.sawyer:SawyerSettings",
            build="grasprt.drivers.sawyer:sawyer_drivers",
        ),
    )
}


def resolve(target: str) -> Any:
    """What a registry entry's "module:attribute" names, imported on first use."""
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def robot_names() -> tuple[str, ...]:
    return tuple(ROBOTS)


def robot_kind(name: str) -> RobotKind:
    try:
        return ROBOTS[name]
    except KeyError:
        raise ConfigError(f"--robot must be one of {', '.join(ROBOTS)}, not {name!r}") from None


def robot_settings_types() -> dict[str, type]:
    """Each robot's settings dataclass by section name (for grasprt.config)."""
    return {name: kind.settings_type() for name, kind in ROBOTS.items()}


def check_run(cfg: RunConfig, kind: RobotKind, bundle: Bundle) -> None:
    """Refuse, in one line, what this robot kind cannot do before anything is built."""
    if bundle.robot != kind.profile:
        raise ConfigError(
            f"bundle {cfg.bundle} is for robot {bundle.robot!r}; --robot {kind.name} drives "
            f"a {kind.profile}"
        )
    if cfg.sim_clock and not kind.simulated:
        raise ConfigError(f"--clock sim runs on a simulator's clock: --robot {kind.name} is real")
    if cfg.sim_clock and cfg.camera not in (None, "sim"):
        raise ConfigError("--clock sim needs the simulated camera (a real one runs on the wall)")
    if cfg.sim_clock and (cfg.gripper or cfg.heartbeat):
        raise ConfigError(
            "--clock sim runs faster than real time: --gripper and --heartbeat need --clock wall"
        )
    if cfg.gt_mask and not kind.simulated:
        raise ConfigError("--gt-mask needs a simulated robot (only a simulator knows the truth)")
    if not kind.simulated and cfg.camera in (None, "sim"):
        raise ConfigError(f"--robot {kind.name} needs a real camera, e.g. --camera realsense")


def check_drivers(cfg: RunConfig, bundle: Bundle) -> None:
    """Refuse what `cfg`'s robot kind cannot run, building nothing."""
    check_run(cfg, robot_kind(cfg.robot), bundle)


def build_drivers(cfg: RunConfig, bundle: Bundle) -> Drivers:
    """The drivers `cfg` names, built and not connected (Run's `make_drivers`)."""
    check_drivers(cfg, bundle)
    return robot_kind(cfg.robot).builder()(cfg, bundle)
