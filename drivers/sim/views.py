"""Held-out model views from the simulator: what reduced precisions are gated on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grasprt.bundle import Bundle
from grasprt.calibration.model_view import ModelView
from grasprt.clock import SimClock
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.factory import make_sim


def held_out_views(bundle: Bundle, seeds: Sequence[int]) -> list[np.ndarray]:
    """Model-view images (400x400x3 uint8), one per world seed: each a fresh scene with
    the arm at its start pose above the table, in the bundle's camera."""
    world, _robot, camera = make_sim(SimConfig(), SimClock(), 0)
    view = ModelView(camera.intrinsics, bundle.camera)
    frames = []
    for seed in seeds:
        world.reset(int(seed))
        frames.append(np.ascontiguousarray(view.apply(camera.capture().image)))
    return frames
