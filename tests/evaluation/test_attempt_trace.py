"""An attempt's outcome from the simulator's truth, cycle by cycle."""

from __future__ import annotations

import pytest

from grasprt.drivers.sim.world import GraspTruth
from grasprt.evaluation.attempt_trace import OUTCOMES, AttemptTrace

OPEN = GraspTruth(closing=False, held=False, lift_m=0.0)
SHUT = GraspTruth(closing=True, held=False, lift_m=0.0)


def held(lift: float = 0.0) -> GraspTruth:
    return GraspTruth(closing=True, held=True, lift_m=lift)


def outcome(*cycles: GraspTruth, success: bool = False, fault: str | None = None) -> str:
    trace = AttemptTrace()
    for c in cycles:
        trace.observe(c)
    return trace.outcome(success, fault)


@pytest.mark.parametrize(
    ("cycles", "expected"),
    [
        ((OPEN, OPEN), "never_closed"),
        ((OPEN, SHUT, OPEN), "closed_on_nothing"),
        # Held, then the gripper told to open: the controller let go.
        ((OPEN, held(), held(0.02), OPEN), "let_go"),
        # Held, then lost with the gripper still closing: it slipped out.
        ((OPEN, held(), held(0.03), SHUT), "dropped"),
        ((OPEN, held(), held(0.01)), "held_not_lifted"),
        # Let go, grasped again, and slipped: the last loss names it.
        ((held(), OPEN, held(0.02), SHUT), "dropped"),
        ((held(), SHUT, OPEN, held(0.02), OPEN), "let_go"),
    ],
)
def test_the_trace_names_what_went_wrong(cycles: tuple[GraspTruth, ...], expected: str) -> None:
    assert outcome(*cycles) == expected


def test_the_worlds_verdict_and_a_fault_come_first() -> None:
    assert outcome(OPEN, held(0.06), success=True) == "success"
    assert outcome(OPEN, held(0.06), fault="stale state") == "fault"
    assert outcome(success=False) == "never_closed"  # no cycle ran


def test_the_trace_counts_what_it_saw() -> None:
    trace = AttemptTrace()
    for c in (OPEN, held(0.01), held(0.04), OPEN, held(0.02), SHUT):
        trace.observe(c)
    assert (trace.closed_cycles, trace.held_cycles) == (4, 3)
    assert (trace.releases, trace.slips) == (1, 1)
    assert trace.max_lift_held_m == pytest.approx(0.04)
    assert set(OUTCOMES) >= {trace.outcome(False, None), "success"}
