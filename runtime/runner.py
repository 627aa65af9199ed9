"""A run: validate everything, connect the drivers, run episodes, stop safely, report.

Order matters for safety: config, bundle, drivers (built, not connected), ONNX sessions
and the record file are all checked before any driver connects, so bad input never
reaches a moving arm. The runtime builds no driver itself: a factory (the drivers'
registry) or ready drivers are handed in.
"""

from __future__ import annotations

import dataclasses
import platform
import signal
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import grasprt
from grasprt.bundle import Bundle, check_against_profile, describe, load_bundle
from grasprt.calibration.model_view import ModelView
from grasprt.calibration.mount import Mount, check_translation, load_mount
from grasprt.config import RunConfig
from grasprt.errors import DriverError
from grasprt.kinematics import Kinematics
from grasprt.profiles import RobotProfile, get_profile
from grasprt.runtime.command_gate import CommandGate
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.limiter import Limiter, LimiterConfig
from grasprt.runtime.loop import ControlLoop, EpisodeResult, LoopConfig, cycle_stages
from grasprt.runtime.policy import OnnxPolicy
from grasprt.runtime.realtime import LoopPriorities, placement_cpus
from grasprt.runtime.timing import StageTimer
from grasprt.types import Camera, Drivers, Policy

if TYPE_CHECKING:
    from grasprt.runtime.quantize import ViewSource


@dataclass
class RunReport:
    episodes: list[EpisodeResult] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    dropped_records: int = 0
    record_failure: str | None = None
    stopped: str | None = None
    # The live view's and the shadow bundle's own accounts (None: not asked for).
    live: dict[str, Any] | None = None
    shadow: dict[str, Any] | None = None

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
            "photon_to_command_ms": t.get("photon_to_command_ms", {}),
            "stages": t.get("stages", {}),
            "limited_steps": sum(e.limited_steps for e in self.episodes),
            "holds": sum(e.holds for e in self.episodes),
            "perception_holds": _sum_counts(e.perception_holds for e in self.episodes),
            "steps": sum(e.steps for e in self.episodes),
            "mean_steps": float(np.mean([e.steps for e in self.episodes])) if n else 0.0,
            "dropped_records": self.dropped_records,
            "record_failure": self.record_failure,
            "live": self.live,
            "shadow": self.shadow,
            "per_episode": [
                {
                    "episode": e.episode,
                    "outcome": e.outcome,
                    "steps": e.steps,
                    "limited_steps": e.limited_steps,
                    "holds": e.holds,
                    "perception_holds": dict(e.perception_holds),
                    "fault": e.fault,
                }
                for e in self.episodes
            ],
        }


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, n in c.items():
            total[k] = total.get(k, 0) + n
    return total


# What builds the drivers of a run from its configuration (drivers/registry.py's
# `build_drivers`: the runtime never constructs a driver itself).
DriverFactory = Callable[[RunConfig, Bundle], Drivers]
# What builds the run's policy once its bundle, settings and drivers are known;
# None: the bundle's own ONNX graphs (`onnx_policy`).
PolicyFactory = Callable[["Run"], Policy]


def onnx_policy(run: Run) -> Policy:
    """The bundle's graphs, as `[inference]` says, on true masks with `--gt-mask`."""
    pipeline = Pipeline(run.bundle, run.cfg.inference, views=run.views)
    return OnnxPolicy(pipeline, truth_mask=run.cfg.gt_mask)


def make_limiter(
    cfg: RunConfig, bundle: Bundle, profile: RobotProfile, kin: Kinematics, table_z: float | None
) -> Limiter:
    return Limiter(LimiterConfig.resolve(cfg.limiter, bundle.rate_hz, table_z), profile, kin)


class Run:
    """Everything a `grasprt run` needs, validated before a driver connects.

    In order: the bundle (against the contract and its robot's profile), the drivers
    (built, not connected: a bad camera spec or a robot that cannot do what was asked
    is refused here), the limiter, the policy (ONNX sessions), then the record file.
    `execute` connects the camera before the arm: the model view (the camera's
    coverage of the bundle's view) is checked before the arm is enabled.
    """

    def __init__(
        self,
        cfg: RunConfig,
        *,
        make_drivers: DriverFactory | None = None,
        drivers: Drivers | None = None,
        policy: PolicyFactory | None = None,
        views: ViewSource | None = None,
        progress: Callable[[str], None] | None = None,
        on_cycle: Callable[[int, int, dict], None] | None = None,
        rate_hz: float | None = None,
        priorities: LoopPriorities | None = None,
    ) -> None:
        self.cfg = cfg
        # Another rate than the bundle's: only `grasprt bench` asks (headroom tests).
        self.rate_hz = rate_hz
        self.progress = progress or (lambda s: None)
        # Held-out simulator views for gating a reduced precision (None: fp32 only).
        self.views = views
        self.bundle = load_bundle(cfg.bundle)
        self.profile = get_profile(self.bundle.robot)
        check_against_profile(self.bundle, self.profile)
        self.kin = Kinematics(self.profile)
        self.mount = self._load_mount()
        if drivers is None:
            if make_drivers is None:
                raise TypeError("Run needs drivers or a factory for them (drivers/registry.py)")
            drivers = make_drivers(cfg, self.bundle)
        self.drivers = drivers
        if drivers.gripper is not None:
            # Another gripper than the profile's (MuJoCo's robosuite fingers): the floor
            # and the grasp detection guard the fingertips the arm really has.
            self.profile = dataclasses.replace(self.profile, gripper=drivers.gripper)
            self.kin = Kinematics(self.profile)
        self.steps = cfg.max_steps or drivers.default_max_steps
        self.limiter = make_limiter(cfg, self.bundle, self.profile, self.kin, drivers.table_z)
        self._start_priorities(priorities)
        self.policy = (policy or onnx_policy)(self)
        warm_up = getattr(self.policy, "warm_up", None)
        if warm_up is not None and not cfg.sim_clock:
            # On the wall clock an engine's slow first runs would be the first cycles'.
            warm_up()
        if cfg.shadow:
            from grasprt.runtime.run_extras import shadowed

            self.policy = shadowed(self, self.policy)
        # Threads started from here on (recorder, drivers) rank below the model's.
        self.priorities.before_threads()
        for note in self.priorities.notes:
            self.progress(f"real-time: {note}")
        self.model_view: ModelView | None = None  # once the camera is connected
        self._on_cycle = on_cycle
        self.loop: ControlLoop | None = None
        self.recorder = self._open_record()
        # The live view binds now, with the other checks, before anything moves.
        from grasprt.runtime.run_extras import open_live, sinks

        self.live = open_live(self)
        self.sink = sinks(self)

    def _load_mount(self) -> Mount | None:
        """The camera's measured mount (--mount), checked before anything is built."""
        if not self.cfg.mount:
            return None
        mount = load_mount(self.cfg.mount, self.profile)
        check_translation(mount, self.cfg.mount_max_offset_mm)
        self.progress(
            mount.describe() + f": rotation corrected in the model view, the shift is within "
            f"{self.cfg.mount_max_offset_mm:g} mm and left as it is"
        )
        return mount

    def _start_priorities(self, priorities: LoopPriorities | None) -> None:
        # Real-time ranking of the run's threads (realtime.py); a bench brings its own,
        # set up before its own sessions. Not on the simulator's clock: that loop never
        # sleeps, and at SCHED_FIFO it would starve a core.
        cfg = self.cfg
        self._own_priorities = priorities is None
        self.priorities = priorities or LoopPriorities(
            cfg.sched == "fifo" and not cfg.sim_clock,
            *placement_cpus(cfg.inference.placement, cfg.inference.intra_op_threads),
        )
        if self._own_priorities:
            self.priorities.before_sessions()

    def _open_record(self) -> Any:
        if not self.cfg.record:
            return None
        from grasprt.runtime.recorder import FlightRecorder

        # A fast sim outruns the disk by far; a deep queue keeps it from dropping.
        queue = 16384 if self.cfg.sim_clock else 1024
        recorder = FlightRecorder(
            self.cfg.record,
            queue_size=queue,
            frame_every=self.cfg.record_frames_every,
            frame_format=self.cfg.record_frame_format,
            kin=self.kin,
        )
        # Opened now, so a bad path is refused with the other bad input, up front.
        recorder.start(self.run_info())
        return recorder

    def run_info(self) -> dict[str, Any]:
        return {
            "grasprt_version": grasprt.__version__,
            "config": self.cfg.to_dict(),
            "bundle": describe(self.bundle),
            "mount": None if self.mount is None else self.mount.to_dict(),
            "host": {
                "node": platform.node(),
                "machine": platform.machine(),
                "python": platform.python_version(),
            },
            "wall_time": time.time(),
            # What `grasprt replay` needs to rebuild the limiter as it was.
            "table_z": self.drivers.table_z,
        }

    def execute(self) -> RunReport:
        report = RunReport()
        with ExitStack() as stack:
            if self.recorder is not None:
                # Registered first, so it runs last: the summary sees the whole run.
                stack.callback(self._close_record, report)
            if self.live is not None or self.cfg.shadow:
                from grasprt.runtime.run_extras import close_extras

                stack.callback(close_extras, self, report)
            gate = self._connect(stack)
            if self.limiter.config.floor is None:
                # Not an error (a bench with no table), but no one should learn it from
                # a fingertip on the table: the reference controller descends until the
                # floor stops it.
                self.progress(
                    "limiter: no floor configured ([limiter] floor_z): nothing keeps the "
                    "hand above the table"
                )
            self.loop = self._make_loop(gate)
            # The drivers' threads run now: the loop thread alone goes above them.
            self.priorities.in_loop()
            stack.callback(self._end_priorities)
            restore = self._install_signal_handlers()
            try:
                self._episodes(report)
            finally:
                restore()
                report.timing = self.loop.timer.report()
        return report

    def _connect(self, stack: ExitStack) -> CommandGate:
        d = self.drivers
        # The heartbeat first: many microcontroller boards reset when their port
        # opens, and that must happen before the arm is enabled, not after. Then the
        # camera, whose intrinsics (a RealSense knows them once streaming) decide the
        # model view: a camera that sees too little is refused before the arm is on.
        for part in (d.heartbeat, d.camera):
            if part is not None:
                part.connect()
                stack.callback(part.disconnect)
        self.model_view = self._model_view(d.camera)
        self.progress(self.model_view.describe())
        if self.sink is not None:
            from grasprt.runtime.run_extras import note_camera

            note_camera(self, d)
        d.robot.connect()
        stack.callback(d.robot.disconnect)
        gate = CommandGate(d.robot)
        # Runs before the disconnects on the way out: the arm holds first.
        stack.callback(gate.hold, "run end")
        return gate

    def _make_loop(self, gate: CommandGate) -> ControlLoop:
        d, cfg = self.drivers, self.cfg
        assert self.model_view is not None, "the camera is connected first"
        timer = StageTimer(
            capacity=cfg.episodes * self.steps + 16, stages=cycle_stages(self.policy)
        )
        if self.cfg.shadow:
            self.policy.elapsed_s = timer.elapsed_s  # type: ignore[attr-defined]
        return ControlLoop(
            clock=d.clock,
            camera=d.camera,
            robot=d.robot,
            gate=gate,
            policy=self.policy,
            model_view=self.model_view,
            limiter=self.limiter,
            bundle=self.bundle,
            kin=self.kin,
            config=LoopConfig(
                rate_hz=self.rate_hz or self.bundle.rate_hz,
                max_steps=self.steps,
                staleness=cfg.watchdog,
                perception=cfg.perception,
                # The sim clock never idles: nothing goes cold between its cycles.
                prewarm_s=0.0 if cfg.sim_clock else cfg.inference.prewarm_ms / 1e3,
            ),
            timer=timer,
            recorder=self.sink,
            heartbeat=d.heartbeat,
            on_cycle=self._on_cycle,
        )

    def _episodes(self, report: RunReport) -> None:
        assert self.loop is not None
        n_all = self.cfg.episodes
        for n in range(n_all):
            self.drivers.setup_episode(n)
            res = self.loop.run_episode(n)
            report.episodes.append(res)
            self.progress(
                f"episode {n + 1}/{n_all}: {res.outcome} after {res.steps} steps"
                + (f" ({res.fault})" if res.fault else "")
            )
            if res.fault or res.stopped:
                report.stopped = res.stopped
                break

    def _end_priorities(self) -> None:
        if self._own_priorities:
            self.priorities.close()
        else:
            self.priorities.after_run()

    def _close_record(self, report: RunReport) -> None:
        assert self.recorder is not None
        # The counts so far go into the record's summary; the final ones into the report.
        report.dropped_records = self.recorder.dropped
        report.record_failure = self.recorder.failure
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
        rotation = None if self.mount is None else self.mount.rotation
        return ModelView(
            intr, self.bundle.camera, min_coverage=self.cfg.min_coverage, rotation=rotation
        )

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
