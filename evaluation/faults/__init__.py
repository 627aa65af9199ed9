"""`grasprt faults`: every way a run breaks, injected into a real `grasprt run` process.

Each fault is a :class:`Fault`, registered by name from its family's module
(``signals``, ``camera``, ``model``, ``robot``, ``serial``, ``storage``, ``host``). The
campaign (:mod:`.campaign`) starts one `grasprt run` per fault in its own process
group, on the wall clock, with a record and ``--json``; waits until the arm is being
commanded; injects the fault from outside (a signal, a closed pty, a file-size limit,
busy neighbours, or a word on the run's fault-injection FIFO, :mod:`.inject`); and
measures what the arm was told (:mod:`.measure`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from grasprt.config import WatchdogSettings

if TYPE_CHECKING:
    from grasprt.evaluation.faults.trial import Trial

# What must happen: the arm holds; the run rides through (the fault must not stop a
# healthy arm); or the run refuses to start (exit 2, nothing moved).
Expect = Literal["hold", "ride", "refuse"]
FAMILIES = ("signals", "camera", "model", "robot", "serial", "storage", "host")


@dataclass(frozen=True)
class Timing:
    """What the watchdogs allow, for each fault's bound on the time to hold."""

    period_s: float = 0.1
    watchdog: WatchdogSettings = field(default_factory=WatchdogSettings)


@dataclass(frozen=True)
class Fault:
    name: str
    family: str
    summary: str
    expect: Expect
    # Exit statuses that are right (negative: killed by that signal).
    exits: tuple[int, ...]
    inject: Callable[[Trial], None]
    # Injection to the arm holding, at most: the watchdog's threshold plus one cycle.
    bound_s: Callable[[Timing], float] = lambda t: t.period_s
    # What the bound is, in words, for the table.
    bound_text: str = "one cycle"
    args: tuple[str, ...] = ()
    # Serial devices on ptys the run is given: "heartbeat", "gripper".
    devices: tuple[str, ...] = ()
    # Seconds after the injection before the campaign ends a run still going (SIGTERM);
    # a run that stops on its own ends the wait at once.
    observe_s: float = 5.0
    robots: tuple[str, ...] = ("sim", "sawyer")
    # Commands the arm has had before the fault goes in (10: one second at 10 Hz).
    warm_commands: int = 10
    # Runs the child as an unprivileged user (a permission root would not feel).
    unprivileged: bool = False
    # Injected before the run starts (a refusal is the expected answer).
    before_start: bool = False
    # The fault costs the record (its failure is reported, the rest readable).
    record_fails: bool = False
    # Riding through, a fault stop is acceptable too, if the arm held (starvation).
    may_fault: bool = False
    # Before the run starts: make what it needs (a recording), add its arguments.
    prepare: Callable[[Trial], None] | None = None
    # The fault ends by itself (the camera comes back): no command while it lasts,
    # commands again after.
    comes_back: bool = False
    # When the fault really began, found afterwards (the camera's last new frame in the
    # record), for sources the campaign cannot stop at a moment of its choosing.
    began_at: Callable[[Trial], float | None] | None = None


FAULTS: dict[str, Fault] = {}


def register(fault: Fault) -> Fault:
    if fault.name in FAULTS:
        raise ValueError(f"fault {fault.name!r} registered twice")
    FAULTS[fault.name] = fault
    return fault


def all_faults() -> dict[str, Fault]:
    """Every fault, in family order (importing the families registers them)."""
    for family in FAMILIES:
        importlib.import_module(f"grasprt.evaluation.faults.{family}")
    return dict(FAULTS)
