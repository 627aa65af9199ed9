"""A kinematic Sawyer with a rendered wrist camera: the default robot, runs anywhere."""

from grasprt.drivers.sim.config import SimConfig, gap_preset
from grasprt.drivers.sim.factory import make_sim

__all__ = ["SimConfig", "gap_preset", "make_sim"]
