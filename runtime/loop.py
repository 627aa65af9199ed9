"""The 10 Hz control loop: read -> update -> write, on an absolute schedule.

One cycle (ros2_control's shape):

    wait for slot k -> newest frame -> robot state -> watchdog verdict
      -> model view -> segmenter -> threshold -> controller -> limiter
      -> command (through the gate) -> record

Anything doubtful ends in the arm holding still: a stale frame or state holds this
cycle, a long stall, an overrun streak, a non-finite number, a robot fault or a dead
loop (the heartbeat watchdog, in its own thread) latch the gate and stop the episode.
The loop never learns which camera or robot it has, nor which clock drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from grasprt.bundle import Bundle
from grasprt.calibration.model_view import ModelView
from grasprt.kinematics import Kinematics
from grasprt.runtime.command_gate import CommandGate
from grasprt.runtime.deadline import RateKeeper
from grasprt.runtime.grasp import GraspDetector
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.limiter import Limiter
from grasprt.runtime.timing import StageTimer
from grasprt.runtime.watchdog import (
    HeartbeatWatchdog,
    OverrunCounter,
    StalenessConfig,
    check_staleness,
)
from grasprt.types import Camera, Clock, Heartbeat, JointCommand, Robot


@dataclass(frozen=True)
class LoopConfig:
    rate_hz: float = 10.0
    max_steps: int = 150
    staleness: StalenessConfig = field(default_factory=StalenessConfig)
    lift_height: float = 0.05
    # Feed the simulator's true mask instead of the segmenter's (separates perception
    # from control in evaluations); needs a camera that knows the truth.
    truth_mask: bool = False


@dataclass
class EpisodeResult:
    episode: int
    steps: int = 0
    success: bool = False
    fault: str | None = None
    stopped: str | None = None  # a signal or an operator stop, not a fault
    limited_steps: int = 0
    holds: int = 0
    overruns: int = 0

    @property
    def outcome(self) -> str:
        if self.fault:
            return "fault"
        if self.stopped:
            return "stopped"
        return "success" if self.success else "timeout"


class ControlLoop:
    def __init__(
        self,
        *,
        clock: Clock,
        camera: Camera,
        robot: Robot,
        gate: CommandGate,
        pipeline: Pipeline,
        model_view: ModelView,
        limiter: Limiter,
        bundle: Bundle,
        kin: Kinematics,
        config: LoopConfig,
        timer: StageTimer | None = None,
        recorder: object | None = None,
        heartbeat: Heartbeat | None = None,
        on_cycle: Callable[[int, int, dict], None] | None = None,
    ) -> None:
        self.clock = clock
        self.camera = camera
        self.robot = robot
        self.gate = gate
        self.pipeline = pipeline
        self.model_view = model_view
        self.limiter = limiter
        self.bundle = bundle
        self.config = config
        self.timer = timer or StageTimer()
        self.recorder = recorder
        self.heartbeat = heartbeat
        self.on_cycle = on_cycle
        self.grasp = GraspDetector(kin, config.lift_height)
        self.action_scale = np.asarray(bundle.action_scale, dtype=np.float32)
        self.period = 1.0 / config.rate_hz
        self._stop: str | None = None
        self.cycles = 0

    def request_stop(self, reason: str) -> None:
        """Ask the loop to hold and end at the next cycle (signal handlers call this)."""
        self._stop = reason

    @property
    def stop_requested(self) -> str | None:
        return self._stop

    def _event(self, kind: str, **detail: object) -> None:
        if self.recorder is not None:
            self.recorder.put_event(self.clock.now(), kind, **detail)

    def run_episode(self, episode: int) -> EpisodeResult:
        """Run one episode from the robot's current pose until grasp, step limit or fault."""
        cfg = self.config
        res = EpisodeResult(episode)
        watchdog = HeartbeatWatchdog(cfg.staleness.heartbeat_s, self.gate.latch)
        overruns = OverrunCounter(cfg.staleness)
        rate = RateKeeper(self.clock, self.period)
        self.grasp.reset()
        state0 = self.robot.read_state()
        self.limiter.reset(state0.q, gripper_closed=state0.gripper >= 0.5)
        gripper_closed = state0.gripper >= 0.5
        started = self.clock.now()
        self._event("episode_start", episode=episode)
        watchdog.start()
        rate.start()
        try:
            while res.steps < cfg.max_steps:
                tick = rate.wait()
                watchdog.beat()
                if self.gate.latched:
                    res.fault = self.gate.reason
                    break
                if self._stop:
                    self.gate.hold(self._stop)
                    res.stopped = self._stop
                    break
                self.timer.begin(tick.lateness_s)
                verdict = overruns.update(tick.missed)
                res.overruns += tick.missed
                if verdict.action == "stop":
                    res.fault = verdict.reason
                    self.gate.latch(verdict.reason or "overruns")
                    self.timer.end()
                    break

                frame = self.camera.latest()
                # A frame from before this episode began shows a world that no longer is.
                if frame is not None and frame.stamp < started:
                    frame = None
                self.timer.mark("frame_wait")
                state = self.robot.read_state()
                self.timer.mark("state_read")
                now = self.clock.now()
                if state.fault:
                    res.fault = f"robot: {state.fault}"
                    self.gate.latch(res.fault)
                    self.timer.end()
                    break
                verdict = check_staleness(
                    now,
                    None if frame is None else frame.stamp,
                    state.stamp,
                    started,
                    cfg.staleness,
                )
                if verdict.action == "stop":
                    res.fault = verdict.reason
                    self.gate.latch(verdict.reason or "stale input")
                    self.timer.end()
                    break
                if verdict.action == "hold" or frame is None:
                    self.gate.hold(verdict.reason or "no frame yet")
                    # The arm now stands where it is: the next step starts from there.
                    self.limiter.note_command(None)
                    res.holds += 1
                    res.steps += 1
                    self._record(
                        tick,
                        episode,
                        res.steps,
                        frame,
                        state,
                        None,
                        None,
                        "hold",
                        verdict.reason or "no frame yet",
                    )
                    self.timer.end()
                    continue

                view = self.model_view.apply(frame.image)
                # The state goes in first: a fused pipeline then runs its one graph in
                # the segmenter stage (threshold and controller come out with it).
                self.pipeline.set_state(state.q, state.gripper)
                self.timer.mark("model_view")
                if cfg.truth_mask:
                    if frame.truth_mask is None:
                        res.fault = "--gt-mask needs a camera that knows the true mask"
                        self.gate.latch(res.fault)
                        self.timer.end()
                        break
                    self.timer.mark("segmenter")
                    mask = self.pipeline.set_mask(frame.truth_mask)
                    self.timer.mark("threshold")
                else:
                    self.pipeline.segment(view)
                    self.timer.mark("segmenter")
                    mask = self.pipeline.threshold()
                    self.timer.mark("threshold")
                action = self.pipeline.control(state.q, state.gripper)
                self.timer.mark("controller")

                result = self.limiter.apply(state.q, action, self.action_scale)
                self.timer.mark("limiter")
                if result.fault or result.target is None:
                    res.fault = f"limiter: {result.fault}"
                    self.gate.latch(res.fault)
                    self._record(
                        tick,
                        episode,
                        res.steps,
                        frame,
                        state,
                        action,
                        result,
                        "fault",
                        res.fault,
                        mask,
                    )
                    self.timer.end()
                    break
                gripper_closed = result.gripper_closed
                self.gate.send(JointCommand(result.target, gripper_closed, now))
                self.timer.mark("command")
                if self.heartbeat is not None:
                    self.heartbeat.beat()
                res.steps += 1
                res.limited_steps += int(result.limited)
                self._record(
                    tick, episode, res.steps, frame, state, action, result, "ok", None, mask
                )
                self.timer.mark("record")
                self.timer.end()
                self.cycles += 1
                if self.on_cycle is not None:
                    self.on_cycle(episode, res.steps, {"mask_area": float(mask.sum())})
                if self.grasp.update(state, gripper_closed):
                    res.success = True
                    break
        except Exception as e:
            # A driver that raised, a frame of the wrong size, an ONNX Runtime error: the
            # arm holds and the run ends as a fault stop, never with a traceback mid-air.
            first = str(e).strip().splitlines()
            res.fault = f"{type(e).__name__}: {first[0] if first else 'no message'}"
            self.gate.latch(res.fault)
        finally:
            watchdog.stop()
            if watchdog.tripped and res.fault is None:
                res.fault = self.gate.reason or "loop heartbeat lost"
            if res.fault is None:
                # The episode is over: the arm stays where it is until the next one.
                self.gate.hold(f"episode {episode} {res.outcome}")
        self._event(
            "episode_end",
            episode=episode,
            outcome=res.outcome,
            steps=res.steps,
            fault=res.fault,
            limited_steps=res.limited_steps,
        )
        return res

    def _record(
        self, tick, episode, step, frame, state, action, result, verdict, reason, mask=None
    ) -> None:
        if self.recorder is None:
            return
        t = self.clock.now()
        cycle = {
            "episode": episode,
            "step": step,
            "slot": tick.k,
            "due": tick.due,
            "lateness_ms": tick.lateness_s * 1e3,
            "missed": tick.missed,
            "frame_stamp": None if frame is None else frame.stamp,
            "frame_age_ms": None if frame is None else (t - frame.stamp) * 1e3,
            "q": state.q.copy(),
            "gripper": state.gripper,
            "object_held": state.object_held,
            "action": None if action is None else action.copy(),
            "requested": None if result is None or result.requested is None else result.requested,
            "command": None if result is None or result.target is None else result.target,
            "gripper_closed": None if result is None else result.gripper_closed,
            "limiter_status": None if result is None else int(result.status),
            "limited": None if result is None else bool(result.limited),
            "verdict": verdict,
            "reason": reason,
            "mask_area": None if mask is None else float(mask.sum()),
            "stages_ms": self.timer.current_row(),
        }
        self.recorder.put_cycle(
            t,
            cycle,
            # A bool mask is a quarter of the float one: deep queues stay small.
            None if mask is None else mask[0, 0] > 0.5,
            None if frame is None else frame.image,
        )
