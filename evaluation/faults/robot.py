"""The robot: a state that stops updating, an e-stop, an error state."""

from __future__ import annotations

from grasprt.evaluation.faults import Fault, register

register(
    Fault(
        "stale_state",
        "robot",
        "the robot's state stops updating: hold once it is state_hold_s old",
        "hold",
        exits=(3,),
        inject=lambda t: t.robot_fault("state_stall"),
        bound_s=lambda t: t.watchdog.state_hold_s + t.period_s,
        bound_text="state_hold_s + 1 cycle",
    )
)
register(
    Fault(
        "estop",
        "robot",
        "the robot reports its e-stop pressed: fault stop at the next cycle",
        "hold",
        exits=(3,),
        inject=lambda t: t.robot_fault("estop"),
    )
)
register(
    Fault(
        "robot_error",
        "robot",
        "the robot reports an error state: fault stop at the next cycle",
        "hold",
        exits=(3,),
        inject=lambda t: t.robot_fault("robot_error"),
    )
)
