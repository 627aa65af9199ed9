"""The bundle's ONNX graphs as a :class:`grasprt.types.Policy`.

Three ways to run the same bundle, each named for what it runs, so stage times stay
honest:

    fused        one graph: segmenter, threshold and controller together (the default)
    two graphs   "segmenter", "threshold", "controller", each timed on its own
    true masks   the simulator's mask in the segmenter's place: "controller" alone
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from grasprt.errors import DriverError
from grasprt.runtime.inference import Pipeline
from grasprt.types import Observation

# The stage name of the fused graph: it is the segmenter and the controller at once.
FUSED_STAGE = "segmenter+controller"


class OnnxPolicy:
    def __init__(self, pipeline: Pipeline, *, truth_mask: bool = False) -> None:
        self.pipeline = pipeline
        self.truth_mask = truth_mask
        self.mask = pipeline.mask
        if truth_mask:
            self.stages: tuple[str, ...] = ("controller",)
        elif pipeline.fused is not None:
            self.stages = (FUSED_STAGE,)
        else:
            self.stages = ("segmenter", "threshold", "controller")

    def warm_up(self) -> None:
        """Once, before the first cycle (Pipeline.warm_up)."""
        self.pipeline.warm_up()

    def prewarm(self) -> None:
        """Between cycles: the last cycle's runs again (runtime/loop.py, prewarm)."""
        self.pipeline.prewarm(segmenter=not self.truth_mask)

    def step(self, obs: Observation, mark: Callable[[str], None]) -> np.ndarray:
        p = self.pipeline
        if self.truth_mask:
            if obs.truth_mask is None:
                raise DriverError("--gt-mask needs a camera that knows the true mask")
            p.set_mask(obs.truth_mask)
            action = p.control(obs.q, obs.gripper)
            mark("controller")
            return action
        if p.fused is not None:
            # The state goes in first, so the one graph runs whole in `segment`;
            # `threshold` and `control` then hand back what it made.
            p.set_state(obs.q, obs.gripper)
            p.segment(obs.view)
            p.threshold()
            action = p.control(obs.q, obs.gripper)
            mark(FUSED_STAGE)
            return action
        p.segment(obs.view)
        mark("segmenter")
        p.threshold()
        mark("threshold")
        action = p.control(obs.q, obs.gripper)
        mark("controller")
        return action
