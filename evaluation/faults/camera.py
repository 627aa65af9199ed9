"""The camera: frames that stop coming (a stalled USB camera)."""

from __future__ import annotations

from grasprt.evaluation.faults import Fault, register

register(
    Fault(
        "camera_stall",
        "camera",
        "the camera keeps giving its last frame: hold once it is frame_hold_s old, "
        "fault stop at frame_stop_s",
        "hold",
        exits=(3,),
        inject=lambda t: t.robot_fault("camera_stall"),
        bound_s=lambda t: t.watchdog.frame_hold_s + t.period_s,
        bound_text="frame_hold_s + 1 cycle",
    )
)
