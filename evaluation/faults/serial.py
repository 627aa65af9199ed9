"""Serial devices unplugged: their pty closed, as a pulled USB cable closes the port."""

from __future__ import annotations

from grasprt.evaluation.faults import Fault, register

# drivers/robotiq.py: a gripper not answering this long is a fault.
GRIPPER_STALE_S = 1.0

register(
    Fault(
        "gripper_unplugged",
        "serial",
        "the Robotiq gripper's port closes: fault once it has not answered for 1 s",
        "hold",
        exits=(3,),
        inject=lambda t: t.unplug("gripper"),
        bound_s=lambda t: GRIPPER_STALE_S + t.period_s,
        bound_text="gripper stale 1 s + 1 cycle",
        devices=("gripper",),
    )
)
register(
    Fault(
        "heartbeat_gone",
        "serial",
        "the heartbeat monitor's port closes: fault once no beat has reached it for two periods",
        "hold",
        exits=(3,),
        inject=lambda t: t.unplug("heartbeat"),
        # drivers/heartbeat.py: max_age_s = 2 periods without a delivered beat.
        bound_s=lambda t: 3 * t.period_s,
        bound_text="2 beat periods + 1 cycle",
        devices=("heartbeat",),
    )
)
