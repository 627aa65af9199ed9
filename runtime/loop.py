"""The 10 Hz control loop: read -> decide -> write, on an absolute schedule.

One cycle, in ros2_control's shape:

    read     wait for slot k, the newest frame, the robot state, the staleness verdict
    decide   model view -> policy (segmenter, threshold, controller) -> limiter
    write    the command through the gate, the external heartbeat, the record

and it ends in one :class:`Outcome`: ``ok``, ``hold`` (this cycle only: stale input, no
frame yet, a mask the perception gate refuses: perception.py) or ``stop`` (the episode
ends; the gate latches on a fault, holds on an operator's stop). Every stop goes through
:meth:`ControlLoop._stop`. Anything doubtful ends in the arm holding still: a stale
frame or state holds this cycle; a long stall, an overrun streak, a non-finite number, a
robot fault, an exception or a dead loop (the heartbeat watchdog, in its own thread)
latch the gate. The loop never learns which camera, robot or policy it has, nor which
clock drives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from grasprt.bundle import MASK_SIZE, Bundle, declared_mask_area
from grasprt.calibration.model_view import ModelView
from grasprt.config import PerceptionSettings, WatchdogSettings
from grasprt.kinematics import Kinematics
from grasprt.runtime.command_gate import CommandGate
from grasprt.runtime.cycle_record import CycleRecord
from grasprt.runtime.deadline import RateKeeper, Tick
from grasprt.runtime.grasp import GraspDetector
from grasprt.runtime.limiter import Limiter, LimitResult
from grasprt.runtime.perception import PerceptionGate, PerceptionHold
from grasprt.runtime.timing import StageTimer
from grasprt.runtime.watchdog import HeartbeatWatchdog, OverrunCounter, Verdict, check_staleness
from grasprt.types import (
    Camera,
    Clock,
    Frame,
    Heartbeat,
    JointCommand,
    Observation,
    Policy,
    Robot,
    RobotState,
)

# The loop's own stages around the policy's; together they tile the cycle.
READ_STAGES = ("frame_wait", "state_read", "model_view")
# The perception gate (runtime/perception.py) is its own stage; records made before it
# was split off charged it to "limiter".
WRITE_STAGES = ("perception", "limiter", "command", "record")


def cycle_stages(policy: Policy) -> tuple[str, ...]:
    """The timer's columns for a loop running ``policy``."""
    return (*READ_STAGES, *policy.stages, *WRITE_STAGES)


@dataclass(frozen=True)
class LoopConfig:
    rate_hz: float = 10.0
    max_steps: int = 150
    staleness: WatchdogSettings = field(default_factory=WatchdogSettings)
    lift_height: float = 0.05
    perception: PerceptionSettings = field(default_factory=PerceptionSettings)
    # A policy that can (OnnxPolicy.prewarm) runs its last cycle's models again between
    # cycles, ending this long before each slot, outside the cycle's timing, so the
    # cycle finds them warm ([inference] prewarm_ms; 0: off).
    prewarm_s: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """How one cycle ended. ``fault`` tells a stop that latches from an operator's."""

    kind: Literal["ok", "hold", "stop"]
    reason: str | None = None
    fault: bool = True

    @classmethod
    def stop(cls, reason: str, *, fault: bool = True) -> Outcome:
        return cls("stop", reason, fault)


OK = Outcome("ok")


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
    # Perception-gate holds by check (runtime/perception.py CHECKS).
    perception_holds: dict[str, int] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        if self.fault:
            return "fault"
        if self.stopped:
            return "stopped"
        return "success" if self.success else "timeout"


@dataclass
class _Reading:
    """What the read half of a cycle found."""

    tick: Tick
    frame: Frame | None
    state: RobotState
    now: float
    verdict: Verdict


@dataclass
class _Decision:
    action: np.ndarray
    mask: np.ndarray
    # None when the perception gate held: the action was never limited nor used.
    limited: LimitResult | None
    # The frame's capture stamp to the command handed to the driver, once sent.
    photon_s: float | None = None
    perception: PerceptionHold | None = None


@dataclass
class _Episode:
    """One episode's running state: what the cycle methods share."""

    result: EpisodeResult
    rate: RateKeeper
    overruns: OverrunCounter
    started: float
    gripper_closed: bool
    # The last commanded cycle's state and mask area, for the checks after its timing.
    last_state: RobotState | None = None
    last_mask_area: float = 0.0


class ControlLoop:
    def __init__(
        self,
        *,
        clock: Clock,
        camera: Camera,
        robot: Robot,
        gate: CommandGate,
        policy: Policy,
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
        self.policy = policy
        self.model_view = model_view
        self.limiter = limiter
        self.config = config
        self.timer = timer or StageTimer(stages=cycle_stages(policy))
        self.recorder = recorder
        self.heartbeat = heartbeat
        self.on_cycle = on_cycle
        self.grasp = GraspDetector(kin, config.lift_height)
        self.perception = PerceptionGate(
            config.perception,
            kin,
            bundle.camera,
            (MASK_SIZE, MASK_SIZE),
            declared_mask_area(bundle),
        )
        self.action_scale = np.asarray(bundle.action_scale, dtype=np.float32)
        self.period = 1.0 / config.rate_hz
        self._stop_request: str | None = None
        self._prewarm_run_s: float | None = None  # how long a pre-warm run takes
        self._prewarm_off = False  # set once a pre-warm ran into its slot
        self.cycles = 0

    def request_stop(self, reason: str) -> None:
        """Ask the loop to hold and end at the next cycle (signal handlers call this)."""
        self._stop_request = reason

    @property
    def stop_requested(self) -> str | None:
        return self._stop_request

    # --- the episode --------------------------------------------------------------

    def run_episode(self, episode: int) -> EpisodeResult:
        """Run one episode from the robot's current pose until grasp, step limit or fault."""
        ep = self._begin(episode)
        watchdog = HeartbeatWatchdog(self.config.staleness.heartbeat_s, self.gate.latch)
        watchdog.start()
        ep.rate.start()
        try:
            while ep.result.steps < self.config.max_steps:
                outcome = self._cycle(ep, watchdog.beat)
                if outcome.kind == "stop":
                    self._stop(ep, outcome)
                    break
                if outcome.kind == "ok" and self._after_command(ep):
                    ep.result.success = True
                    break
        except Exception as e:
            # A driver that raised, a frame of the wrong size, an ONNX Runtime error: the
            # arm holds and the run ends as a fault stop, never with a traceback mid-air.
            self._stop(ep, Outcome.stop(_describe(e)))
        finally:
            watchdog.stop()
            self._finish(ep, watchdog.tripped)
        return ep.result

    def _begin(self, episode: int) -> _Episode:
        state0 = self.robot.read_state()
        closed = state0.gripper >= 0.5
        self.limiter.reset(state0.q, gripper_closed=closed)
        self.grasp.reset()
        self.perception.reset()
        ep = _Episode(
            result=EpisodeResult(episode),
            rate=RateKeeper(self.clock, self.period),
            overruns=OverrunCounter(self.config.staleness),
            started=self.clock.now(),
            gripper_closed=closed,
        )
        # Where the limiter starts from: what a replay needs to decide as this run did.
        self._event("episode_start", episode=episode, q=state0.q.copy(), gripper=state0.gripper)
        return ep

    def _stop(self, ep: _Episode, outcome: Outcome) -> None:
        """The one way an episode stops early: latch on a fault, hold on request."""
        reason = outcome.reason or "stop"
        if outcome.fault:
            ep.result.fault = reason
            self.gate.latch(reason)
        else:
            ep.result.stopped = reason
            self.gate.hold(reason)

    def _finish(self, ep: _Episode, watchdog_tripped: bool) -> None:
        res = ep.result
        if watchdog_tripped and res.fault is None:
            res.fault = self.gate.reason or "loop heartbeat lost"
        if res.fault is None:
            # The episode is over: the arm stays where it is until the next one.
            self.gate.hold(f"episode {res.episode} {res.outcome}")
        self._event(
            "episode_end",
            episode=res.episode,
            outcome=res.outcome,
            steps=res.steps,
            fault=res.fault,
            limited_steps=res.limited_steps,
        )

    # --- one cycle ----------------------------------------------------------------

    def _cycle(self, ep: _Episode, beat: Callable[[], None]) -> Outcome:
        late_ok = self._prewarm(ep)
        tick = ep.rate.wait(late_ok)
        beat()
        if self.gate.latched:
            return Outcome.stop(self.gate.reason or "gate latched")
        if self._stop_request:
            return Outcome.stop(self._stop_request, fault=False)
        self.timer.begin(tick.lateness_s)
        try:
            return self._timed_cycle(ep, tick)
        finally:
            self.timer.end()

    def _prewarm(self, ep: _Episode) -> float:
        """The pre-warm run, timed to end `prewarm_s` before the next slot.

        It starts its expected length earlier: the longest recent run (decaying by
        a tenth a cycle), a quarter period before the first; one with no room is left
        out. Returns how late the next slot may run (s): 0, unless this run reached
        into it.
        """
        warm = getattr(self.policy, "prewarm", None)
        if self.config.prewarm_s <= 0 or warm is None or ep.result.steps == 0 or self._prewarm_off:
            return 0.0
        if self._prewarm_run_s is None:
            self._prewarm_run_s = self.period / 4
        due = ep.rate.next_due()
        at = due - self.config.prewarm_s - self._prewarm_run_s
        if self.clock.now() >= at:
            return 0.0
        self.clock.sleep_until(at)
        start = time.perf_counter()
        warm()
        took = time.perf_counter() - start
        self._prewarm_run_s = max(took, 0.9 * self._prewarm_run_s)
        if self.clock.now() <= due:
            return 0.0
        # It ran into the slot: that slot runs late rather than being skipped (a lost
        # command), and no pre-warm runs again this run: one that can overrun its room
        # once can again (a 3000-cycle bench lost 7 slots so).
        self._prewarm_off = True
        return self.period / 2

    def _timed_cycle(self, ep: _Episode, tick: Tick) -> Outcome:
        ep.result.overruns += tick.missed
        overrun = ep.overruns.update(tick.missed)
        if overrun.action == "stop":
            return Outcome.stop(overrun.reason or "overruns")
        reading = self._read(ep, tick)
        if reading.state.fault:
            return Outcome.stop(f"robot: {reading.state.fault}")
        heartbeat_fault = self._heartbeat_fault()
        if heartbeat_fault:
            return Outcome.stop(heartbeat_fault)
        if reading.verdict.action == "stop":
            return Outcome.stop(reading.verdict.reason or "stale input")
        if reading.verdict.action == "hold" or reading.frame is None:
            return self._hold(ep, reading, reading.verdict.reason or "no frame yet")
        decision = self._decide(reading)
        if decision.perception is not None:
            return self._hold(ep, reading, decision.perception.reason, decision)
        return self._write(ep, reading, decision)

    def _heartbeat_fault(self) -> str | None:
        # An external monitor that can tell it no longer hears us (drivers/heartbeat.py):
        # its e-stop is open or about to be, so the arm holds.
        check = getattr(self.heartbeat, "fault", None)
        return check() if callable(check) else None

    def _read(self, ep: _Episode, tick: Tick) -> _Reading:
        frame = self.camera.latest()
        # A frame from before this episode began shows a world that no longer is.
        if frame is not None and frame.stamp < ep.started:
            frame = None
        self.timer.mark("frame_wait")
        state = self.robot.read_state()
        self.timer.mark("state_read")
        now = self.clock.now()
        verdict = check_staleness(
            now,
            None if frame is None else frame.stamp,
            state.stamp,
            ep.started,
            self.config.staleness,
        )
        return _Reading(tick, frame, state, now, verdict)

    def _decide(self, r: _Reading) -> _Decision:
        assert r.frame is not None
        view = self.model_view.apply(r.frame.image)
        self.timer.mark("model_view")
        obs = Observation(view, r.state.q, r.state.gripper, r.frame.truth_mask)
        action = self.policy.step(obs, self.timer.mark)
        # The mask is checked before its action is used; a hold never reaches the limiter.
        held = self.perception.check(
            self.policy.mask, r.state.q, r.frame.stamp, r.state.gripper, r.frame.hand_mask
        )
        self.timer.mark("perception")
        limited = (
            None
            if held
            else self.limiter.apply(r.state.q, action, self.action_scale, r.state.gripper)
        )
        self.timer.mark("limiter")
        return _Decision(action, self.policy.mask, limited, perception=held)

    def _write(self, ep: _Episode, r: _Reading, d: _Decision) -> Outcome:
        res, limited = ep.result, d.limited
        assert limited is not None  # a perception hold never gets here
        if limited.fault or limited.target is None:
            outcome = Outcome.stop(f"limiter: {limited.fault}")
            self._record(ep, r, "stop", outcome.reason, d)
            return outcome
        ep.gripper_closed = limited.gripper_closed
        if not self.gate.send(JointCommand(limited.target, limited.gripper_closed, r.now)):
            # Latched while this cycle decided (the heartbeat watchdog from its thread, a
            # failed send): the command never reached the arm; the record must not say so.
            outcome = Outcome.stop(self.gate.reason or "command refused")
            self._record(ep, r, "stop", outcome.reason, d)
            return outcome
        assert r.frame is not None  # a cycle without a frame holds
        d.photon_s = self.clock.now() - r.frame.stamp
        self.timer.mark("command")
        self.timer.note_photon(d.photon_s)
        if self.heartbeat is not None:
            self.heartbeat.beat()
        res.steps += 1
        res.limited_steps += int(limited.limited)
        # Before the record's mark, so that it is timed: numpy lets go of the GIL to sum
        # the mask, and the recorder's thread, just woken by the record, can take it.
        ep.last_state, ep.last_mask_area = r.state, float(d.mask.sum())
        self._record(ep, r, "ok", None, d)
        self.timer.mark("record")
        return OK

    def _after_command(self, ep: _Episode) -> bool:
        """Outside the cycle's timing: progress, and whether the grasp is done."""
        assert ep.last_state is not None
        self.cycles += 1
        if self.on_cycle is not None:
            self.on_cycle(ep.result.episode, ep.result.steps, {"mask_area": ep.last_mask_area})
        return self.grasp.update(ep.last_state, ep.gripper_closed)

    def _hold(self, ep: _Episode, r: _Reading, reason: str, d: _Decision | None = None) -> Outcome:
        self.gate.hold(reason)
        # The arm now stands where it is: the next step starts from there.
        self.limiter.note_command(None)
        ep.result.holds += 1
        ep.result.steps += 1
        if d is not None and d.perception is not None:
            held = ep.result.perception_holds
            held[d.perception.check] = held.get(d.perception.check, 0) + 1
        self._record(ep, r, "hold", reason, d)
        return Outcome("hold", reason)

    # --- records ------------------------------------------------------------------

    def _event(self, kind: str, **detail: object) -> None:
        if self.recorder is not None:
            self.recorder.put_event(self.clock.now(), kind, **detail)

    def _record(
        self, ep: _Episode, r: _Reading, verdict: str, reason: str | None, d: _Decision | None
    ) -> None:
        if self.recorder is None:
            return
        t = self.clock.now()
        record = _cycle_record(ep, r, t, verdict, reason, d, self.timer.current_row())
        mask = None if d is None else d.mask
        self.recorder.put_cycle(
            t,
            record,
            # A bool mask is a quarter of the float one: deep queues stay small.
            None if mask is None else mask[0, 0] > 0.5,
            None if r.frame is None else r.frame.image,
        )


def _cycle_record(
    ep: _Episode,
    r: _Reading,
    t: float,
    verdict: str,
    reason: str | None,
    d: _Decision | None,
    stages_ms: dict[str, float],
) -> CycleRecord:
    lim = None if d is None else d.limited
    return CycleRecord(
        episode=ep.result.episode,
        step=ep.result.steps,
        slot=r.tick.k,
        due=r.tick.due,
        lateness_ms=r.tick.lateness_s * 1e3,
        missed=r.tick.missed,
        frame_stamp=None if r.frame is None else r.frame.stamp,
        frame_age_ms=None if r.frame is None else (t - r.frame.stamp) * 1e3,
        q=r.state.q.copy(),
        gripper=r.state.gripper,
        object_held=r.state.object_held,
        action=None if d is None else d.action.copy(),
        requested=None if lim is None else lim.requested,
        command=None if lim is None else lim.target,
        gripper_closed=None if lim is None else lim.gripper_closed,
        limiter_status=None if lim is None else int(lim.status),
        limited=None if lim is None else bool(lim.limited),
        verdict=verdict,
        reason=reason,
        mask_area=None if d is None else float(d.mask.sum()),
        photon_to_command_ms=None if d is None or d.photon_s is None else d.photon_s * 1e3,
        stages_ms=stages_ms,
    )


def _describe(e: BaseException) -> str:
    first = str(e).strip().splitlines()
    return f"{type(e).__name__}: {first[0] if first else 'no message'}"
