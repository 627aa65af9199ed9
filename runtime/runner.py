"""A run: validate everything, connect the drivers, run episodes, stop safely, report.

Order matters for safety: config, bundle, ONNX sessions and the record file are all
checked before any driver connects, so bad input never reaches a moving arm.
"""

from __future__ import annotations

import platform
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import grasprt
from grasprt.bundle import Bundle, check_against_profile, describe, load_bundle
from grasprt.calibration.model_view import ModelView
from grasprt.config import RunConfig
from grasprt.errors import ConfigError, DriverError
from grasprt.kinematics import Kinematics
from grasprt.profiles import RobotProfile, get_profile
from grasprt.runtime.clock import MonotonicClock, SimClock
from grasprt.runtime.command_gate import CommandGate
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.limiter import Limiter, LimiterConfig
from grasprt.runtime.loop import ControlLoop, EpisodeResult, LoopConfig
from grasprt.runtime.realtime import LoopPriorities, loop_cpu
from grasprt.runtime.timing import StageTimer
from grasprt.types import Camera, Clock, Heartbeat, Robot

if TYPE_CHECKING:
    from grasprt.drivers.sim.config import SimConfig


@dataclass
class Drivers:
    clock: Clock
    camera: Camera
    robot: Robot
    heartbeat: Heartbeat | None = None
    # Puts the world (sim) or the operator (hardware) in place for episode n.
    setup_episode: Callable[[int], None] = lambda n: None
    # The floor the hand must stay above, base frame, when the driver knows it (sim).
    floor_z: float | None = None
    # The simulated world, when there is one (privileged truth for evaluation).
    world: Any = None


@dataclass
class RunReport:
    episodes: list[EpisodeResult] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    dropped_records: int = 0
    record_failure: str | None = None
    stopped: str | None = None

    @property
    def fault(self) -> str | None:
        return next((e.fault for e in self.episodes if e.fault), None)

    def summary(self) -> dict[str, Any]:
        n = len(self.episodes)
        ok = sum(e.success for e in self.episodes)
        t = self.timing
        return {
            "episodes": n,
            "successes": ok,
            "success_rate": ok / n if n else 0.0,
            "faults": [{"episode": e.episode, "reason": e.fault} for e in self.episodes if e.fault],
            "stopped": self.stopped,
            "overruns": sum(e.overruns for e in self.episodes),
            "cycles": t.get("cycles", 0),
            "cycle_ms": t.get("cycle_ms", {}),
            "lateness_ms": t.get("lateness_ms", {}),
            "stages": t.get("stages", {}),
            "limited_steps": sum(e.limited_steps for e in self.episodes),
            "holds": sum(e.holds for e in self.episodes),
            "steps": sum(e.steps for e in self.episodes),
            "mean_steps": float(np.mean([e.steps for e in self.episodes])) if n else 0.0,
            "dropped_records": self.dropped_records,
            "record_failure": self.record_failure,
            "per_episode": [
                {
                    "episode": e.episode,
                    "outcome": e.outcome,
                    "steps": e.steps,
                    "limited_steps": e.limited_steps,
                    "holds": e.holds,
                    "fault": e.fault,
                }
                for e in self.episodes
            ],
        }


def limiter_floor(cfg: RunConfig, table_z: float | None) -> float | None:
    """The height the limiter keeps the arm's lowest point above: the configured floor
    plane (else the driver's table) plus the clearance; None: no floor."""
    s = cfg.limiter
    floor = s.floor_z if s.floor_z is not None else table_z
    return None if floor is None else floor + s.floor_clearance


def make_limiter(
    cfg: RunConfig, bundle: Bundle, profile: RobotProfile, kin: Kinematics, floor_z: float | None
) -> Limiter:
    s = cfg.limiter
    lcfg = LimiterConfig(
        rate_hz=bundle.rate_hz,
        velocity_factor=s.velocity_factor,
        joint_margin=s.joint_margin,
        floor_z=limiter_floor(cfg, floor_z),
        tracking_steps=s.tracking_steps,
        gripper_band=s.gripper_band,
        gripper_dwell=s.gripper_dwell,
    )
    return Limiter(lcfg, profile, kin)


def sim_config_from(cfg: RunConfig) -> SimConfig:
    from grasprt.drivers.sim.config import SimConfig, gap_preset

    return SimConfig(
        gap=gap_preset(cfg.sim.gap),
        moving=cfg.sim.moving,
        clutter=cfg.sim.clutter,
        camera_file=cfg.sim.camera_file,
    )


def sim_drivers(cfg: RunConfig, profile: RobotProfile, sim: SimConfig | None = None) -> Drivers:
    from grasprt.drivers.sim.factory import make_sim

    clock: Clock = SimClock() if cfg.fast else MonotonicClock()
    world, robot, sim_camera = make_sim(sim or sim_config_from(cfg), clock, cfg.seed)
    camera: Camera = sim_camera
    if cfg.camera not in (None, "sim"):
        camera = _hardware_camera(cfg, clock)
    return Drivers(
        clock=clock,
        camera=camera,
        robot=robot,
        # Each episode its own seed, so one episode can be replayed alone.
        setup_episode=lambda n: world.reset(cfg.seed * 100_003 + n),
        floor_z=world.table_z,
        world=world,
    )


def _hardware_camera(cfg: RunConfig, clock: Clock) -> Camera:
    from grasprt.drivers.factory import make_camera

    return make_camera(cfg.camera or "", clock=clock, calibration=cfg.calibration)


def sawyer_drivers(cfg: RunConfig, profile: RobotProfile) -> Drivers:
    from grasprt.drivers.sawyer import SawyerRobot

    clock = MonotonicClock()
    robot: Robot = SawyerRobot(profile=profile, clock=clock, use_gripper=not cfg.gripper)
    if cfg.gripper:
        robot = _external_gripper(robot, cfg.gripper)
    heartbeat = None
    if cfg.heartbeat:
        from grasprt.drivers.heartbeat import SerialHeartbeat

        heartbeat = SerialHeartbeat(cfg.heartbeat)
    return Drivers(
        clock=clock,
        camera=_hardware_camera(cfg, clock),
        robot=robot,
        heartbeat=heartbeat,
        setup_episode=_operator_setup,
    )


def _external_gripper(robot: Robot, spec: str) -> Robot:
    kind, _, port = spec.partition(":")
    if kind != "robotiq" or not port:
        raise ConfigError(f"--gripper {spec!r}: expected robotiq:/dev/ttyUSB0")
    from grasprt.drivers.arm_with_gripper import ArmWithGripper
    from grasprt.drivers.robotiq import RobotiqGripper

    return ArmWithGripper(robot, RobotiqGripper(port))


def _operator_setup(n: int) -> None:
    import sys

    if sys.stdin.isatty() and n > 0:
        input(f"episode {n}: place the sphere, then press Enter (Ctrl-C to stop) ")


DRIVERS = {"sim": sim_drivers, "sawyer": sawyer_drivers}


class Run:
    """Everything a `grasprt run` needs, validated before a driver is touched."""

    def __init__(
        self,
        cfg: RunConfig,
        *,
        progress: Callable[[str], None] | None = None,
        drivers: Drivers | None = None,
        on_cycle: Callable[[int, int, dict], None] | None = None,
        rate_hz: float | None = None,
        priorities: LoopPriorities | None = None,
    ) -> None:
        self.cfg = cfg
        # Another rate than the bundle's: only `grasprt bench` asks (headroom tests).
        self.rate_hz = rate_hz
        self.progress = progress or (lambda s: None)
        self.profile = get_profile("sawyer")
        self.bundle = load_bundle(cfg.bundle)
        check_against_profile(self.bundle, self.profile)
        self.kin = Kinematics(self.profile)
        # Real-time ranking of the run's threads (realtime.py); a bench brings its own,
        # set up before its own sessions. Not on the simulator's clock: that loop never
        # sleeps, and at SCHED_FIFO it would starve a core.
        self._own_priorities = priorities is None
        self.priorities = priorities or LoopPriorities(
            cfg.realtime and not cfg.fast, loop_cpu(cfg.inference.intra_op_threads)
        )
        if self._own_priorities:
            self.priorities.before_sessions()
        self.pipeline = Pipeline(self.bundle, cfg.inference)
        # Threads started from here on (recorder, drivers) rank below the model's.
        self.priorities.before_threads()
        for note in self.priorities.notes:
            self.progress(f"real-time: {note}")
        self.recorder = None
        if cfg.record:
            from grasprt.runtime.recorder import FlightRecorder

            # A fast sim outruns the disk by far; a deep queue keeps it from dropping.
            queue = 16384 if cfg.fast else 1024
            self.recorder = FlightRecorder(
                cfg.record, queue_size=queue, frame_every=cfg.record_frames_every
            )
        self._drivers = drivers
        self._on_cycle = on_cycle
        self.loop: ControlLoop | None = None
        if self.recorder is not None:
            # Opened now, so a bad path is refused with the other bad input, up front.
            self.recorder.start(self.run_info())

    def run_info(self) -> dict[str, Any]:
        return {
            "grasprt_version": grasprt.__version__,
            "config": self.cfg.to_dict(),
            "bundle": describe(self.bundle),
            "host": {
                "node": platform.node(),
                "machine": platform.machine(),
                "python": platform.python_version(),
            },
            "wall_time": time.time(),
        }

    def execute(self) -> RunReport:
        cfg = self.cfg
        report = RunReport()
        with ExitStack() as stack:
            if self.recorder is not None:
                # Registered first, so it runs last: the summary sees the whole run.
                stack.callback(self._close_record, report)
            drivers = self._drivers or DRIVERS[cfg.robot](cfg, self.profile)
            # The heartbeat first: many microcontroller boards reset when their port
            # opens, and that must happen before the arm is enabled, not after.
            for part in (drivers.heartbeat, drivers.camera, drivers.robot):
                if part is not None:
                    part.connect()
                    stack.callback(part.disconnect)
            gate = CommandGate(drivers.robot)
            # Runs before the disconnects on the way out: the arm holds first.
            stack.callback(gate.hold, "run end")
            model_view = self._model_view(drivers.camera)
            limiter = make_limiter(cfg, self.bundle, self.profile, self.kin, drivers.floor_z)
            if limiter.config.floor_z is None:
                # Not an error (a bench with no table), but no one should learn it from
                # a fingertip on the table: the reference controller descends until the
                # floor stops it.
                self.progress(
                    "limiter: no floor configured ([limiter] floor_z): nothing keeps the "
                    "hand above the table"
                )
            timer = StageTimer(capacity=cfg.episodes * cfg.steps + 16)
            self.loop = ControlLoop(
                clock=drivers.clock,
                camera=drivers.camera,
                robot=drivers.robot,
                gate=gate,
                pipeline=self.pipeline,
                model_view=model_view,
                limiter=limiter,
                bundle=self.bundle,
                kin=self.kin,
                config=LoopConfig(
                    rate_hz=self.rate_hz or self.bundle.rate_hz,
                    max_steps=cfg.steps,
                    staleness=cfg.watchdog,
                    truth_mask=cfg.gt_mask,
                ),
                timer=timer,
                recorder=self.recorder,
                heartbeat=drivers.heartbeat,
                on_cycle=self._on_cycle,
            )
            # The drivers' threads run now: the loop thread alone goes above them.
            self.priorities.in_loop()
            stack.callback(self._end_priorities)
            restore = self._install_signal_handlers()
            try:
                for n in range(cfg.episodes):
                    drivers.setup_episode(n)
                    res = self.loop.run_episode(n)
                    report.episodes.append(res)
                    self.progress(
                        f"episode {n + 1}/{cfg.episodes}: {res.outcome} after {res.steps} steps"
                        + (f" ({res.fault})" if res.fault else "")
                    )
                    if res.fault or res.stopped:
                        report.stopped = res.stopped
                        break
            finally:
                restore()
                report.timing = timer.report()
        return report

    def _end_priorities(self) -> None:
        if self._own_priorities:
            self.priorities.close()
        else:
            self.priorities.after_run()

    def _close_record(self, report: RunReport) -> None:
        assert self.recorder is not None
        self.recorder.close(report.summary())
        report.dropped_records = self.recorder.dropped
        report.record_failure = self.recorder.failure

    def _model_view(self, camera: Camera) -> ModelView:
        intr = camera.intrinsics
        if intr is None:
            raise DriverError(
                f"camera {camera.name!r} has no intrinsics: pass --calibration FILE.yaml "
                "(see grasprt calibrate-camera)"
            )
        view = ModelView(intr, self.bundle.camera, min_coverage=self.cfg.min_coverage)
        self.progress(view.describe())
        return view

    def _install_signal_handlers(self) -> Callable[[], None]:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if self.loop is not None:
                if self.loop.stop_requested:
                    # A second signal: do not wait for the cycle; hold now.
                    self.loop.gate.latch(f"second {name}")
                self.loop.request_stop(name)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, h in previous.items():
                signal.signal(sig, h)

        return restore
