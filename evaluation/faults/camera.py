"""The camera: frames that stop (a stalled USB camera), a RealSense recording paused
and back or played to its end, an OpenCV source whose file disappears under it."""

from __future__ import annotations

import os
from collections.abc import Callable

from grasprt.evaluation.faults import Fault, register
from grasprt.evaluation.faults.measure import last_new_frame
from grasprt.evaluation.faults.recordings import (
    WRIST_CAMERA,
    write_realsense_recording,
    write_video,
)
from grasprt.evaluation.faults.trial import Trial

# Shorter than frame_stop_s: the camera is back before the run would fault.
PAUSE_S = 0.6
# A recording that ends a few seconds into the run's loop (it plays from the camera's
# connect, just before the loop starts), written in real time.
ENDING_RECORDING_S = 3.0


def _realsense(loop: bool, seconds: float) -> Callable[[Trial], None]:
    def prepare(trial: Trial) -> None:
        path = trial.workdir / "camera.db3"
        write_realsense_recording(path, seconds, real_time=not loop)
        trial.extra_args += ["--camera", f"realsense:{path}" + (",loop" if loop else "")]

    return prepare


def _opencv(trial: Trial) -> None:
    path = write_video(trial.workdir / "camera.avi", 10.0)
    trial.extra_args += ["--camera", f"opencv:{path},loop", "--calibration", str(WRIST_CAMERA)]


def _truncate(trial: Trial) -> None:
    # The file the camera reads from is emptied under it: what it has buffered still
    # plays, then nothing (the row's time counts from its last new frame).
    trial.mark_injected()
    os.truncate(trial.workdir / "camera.avi", 0)


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
register(
    Fault(
        "realsense_paused",
        "camera",
        f"a RealSense recording's playback pauses {PAUSE_S:g} s and plays on: hold "
        "while its frames are old, command again once they are new",
        "hold",
        exits=(143,),
        inject=lambda t: t.send(f"camera_pause {PAUSE_S}"),
        bound_s=lambda t: t.watchdog.frame_hold_s + t.period_s,
        bound_text="frame_hold_s + 1 cycle",
        prepare=_realsense(True, 10.0),
        comes_back=True,
        observe_s=PAUSE_S + 2.0,
        robots=("sim",),
    )
)
register(
    Fault(
        "realsense_ended",
        "camera",
        "a RealSense recording plays to its end (the camera stops): hold, then fault stop",
        "hold",
        exits=(3,),
        inject=lambda t: None,
        began_at=last_new_frame,
        bound_s=lambda t: t.watchdog.frame_hold_s + t.period_s,
        bound_text="frame_hold_s + 1 cycle from its last frame",
        prepare=_realsense(False, ENDING_RECORDING_S),
        observe_s=ENDING_RECORDING_S + 4.0,
        warm_commands=5,
        robots=("sim",),
    )
)
register(
    Fault(
        "opencv_gone",
        "camera",
        "an OpenCV source's file is emptied under it: hold once its frames are old, then "
        "fault stop",
        "hold",
        exits=(3,),
        inject=_truncate,
        began_at=last_new_frame,
        bound_s=lambda t: t.watchdog.frame_hold_s + t.period_s,
        bound_text="frame_hold_s + 1 cycle from its last frame",
        prepare=_opencv,
        observe_s=6.0,
        robots=("sim",),
    )
)
