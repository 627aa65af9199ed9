"""`grasprt eval --trace-labels`: per cycle, what the bundle asked beside what the expert
would have labelled, with the simulator's truth.

DAgger trains the controller on the expert's labels of the states the controller
reaches, so a policy that fails where its teacher says the right thing is a training
problem, and one whose teacher says the wrong thing is a label problem (the let-go in
MuJoCo was one: docs/mujoco.md). This trace tells the two apart: the expert runs
beside the bundle's pipeline on the same world, labels each cycle's state, and never
acts. One JSON line a cycle, written as it goes: an evaluation stopped by a signal
keeps every line of the attempts it ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from grasprt.bundle import N_JOINTS
from grasprt.types import Observation, Policy

LABEL_STAGE = "expert_label"


class LabelTrace:
    """The run's own policy, acting, with the expert labelling each state beside it."""

    def __init__(self, inner: Policy, expert: Any, world: Any, emit: Callable[[dict], None]):
        self.inner = inner
        self.expert = expert
        self.world = world
        self.emit = emit
        self.stages = (*inner.stages, LABEL_STAGE)
        self.cycle = 0

    @property
    def mask(self) -> np.ndarray:
        return self.inner.mask

    def prewarm(self) -> None:
        warm = getattr(self.inner, "prewarm", None)
        if warm is not None:
            warm()

    def warm_up(self) -> None:
        warm = getattr(self.inner, "warm_up", None)
        if warm is not None:
            warm()

    def step(self, obs: Observation, mark: Callable[[str], None]) -> np.ndarray:
        action = self.inner.step(obs, mark)
        label = np.clip(self.expert.action(obs.q), -1.0, 1.0)
        truth = self.world.grasp_truth()
        self.emit(
            {
                # The policy's own count: a cycle the loop held before it ran is not here.
                "step": self.cycle,
                "gripper_out": round(float(action[N_JOINTS]), 4),
                "gripper_label": round(float(label[N_JOINTS]), 4),
                "expert_state": self.expert.state,
                # How far the bundle's joint request is from the label (action units).
                "joint_gap": round(float(np.linalg.norm(action[:N_JOINTS] - label[:N_JOINTS])), 4),
                "gripper_reading": round(float(obs.gripper), 4),
                "mask_cells": int(np.count_nonzero(self.inner.mask > 0.5)),
                "held": bool(truth.held),
                "closing": bool(truth.closing),
                "lift_m": round(float(truth.lift_m), 4),
            }
        )
        self.cycle += 1
        mark(LABEL_STAGE)
        return action


@dataclass
class Disagreements:
    """Cycles counted by whether the bundle's gripper request (> 0: close) and the
    expert's label agree."""

    cycles: int = 0
    open_where_close: int = 0  # the bundle kept the fingers open, the expert said close
    close_where_open: int = 0

    def add(self, row: dict) -> None:
        self.cycles += 1
        out, label = row["gripper_out"] > 0, row["gripper_label"] > 0
        self.open_where_close += int(label and not out)
        self.close_where_open += int(out and not label)

    def line(self, path: str) -> str:
        return (
            f"label trace: {self.cycles} cycles; gripper open where the expert says close "
            f"{self.open_where_close}, closed where it says open {self.close_where_open} -> {path}"
        )


def label_trace_factory(
    out: IO[str], inner: Callable[[Any], Policy], counts: Disagreements | None = None
) -> Callable[[Any], Policy]:
    """A policy factory for `run_attempts`: each attempt's run gets its own expert (on its
    own world) beside `inner`'s policy; lines go to `out`, numbered by attempt."""
    from grasprt.evaluation.evaluate import sim_expert

    attempt = -1

    def build(run: Any) -> Policy:
        nonlocal attempt
        attempt += 1
        n = attempt

        def emit(row: dict) -> None:
            out.write(json.dumps({"attempt": n, **row}) + "\n")
            if counts is not None:
                counts.add(row)

        return LabelTrace(inner(run), sim_expert(run), run.drivers.world, emit)

    return build
