"""The paper's evaluation protocol in the simulator: a grid of sphere positions, repeats each.

Every attempt runs through :class:`~grasprt.runtime.runner.Run`, the very code
`grasprt run` uses (model view, segmenter, threshold, controller, limiter, gate,
watchdogs), with the same configuration (`--config FILE.toml` reaches it whole); only
the clock differs: the simulator's own unless `--clock wall`, so an evaluation runs as
fast as the machine allows.

An attempt succeeds when the world's truth says so (the sphere held and lifted 5 cm off
the table); the loop's own grasp detection ends the episode, and the report counts the
attempts where the two disagree, which should be none.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from grasprt.config import RunConfig, build_run_config
from grasprt.drivers.registry import build_drivers, check_run, robot_kind, robot_settings_types
from grasprt.drivers.sim.config import SceneConfig, SimSettings
from grasprt.drivers.sim.kind import SIM_MAX_STEPS
from grasprt.errors import ConfigError
from grasprt.evaluation.attempt_trace import OUTCOMES, AttemptTrace
from grasprt.runtime.runner import PolicyFactory, Run

if TYPE_CHECKING:
    from grasprt.drivers.sim.config import SimConfig
    from grasprt.drivers.sim.expert import Expert, ExpertConfig

# On the simulator's clock no arm moves in wall time: the wall-clock heartbeat would
# only measure how busy the machine is (a loaded CI box trips 0.5 s). A hung loop still
# trips this one; every other watchdog runs on sim time.
SIM_CLOCK_HEARTBEAT_S = 30.0


def eval_config(bundle: str, robot: str = "sim", **settings: Any) -> RunConfig:
    """The configuration `grasprt eval` would build from flags, for callers in Python:
    `eval_config(b, gap="large", gt_mask=True, grid=10)`. Names are flags' (a sim
    setting, an `[eval]` one or a `[run]` one); the clock is the simulator's."""
    robots = robot_settings_types()
    # The robot's own settings (MuJoCo's add to the sim's) are its flags.
    robot_type = robots.get(robot, SimSettings)
    sim_names = set(getattr(robot_type, "__dataclass_fields__", SimSettings.__dataclass_fields__))
    eval_names = {"grid", "repeats", "expert"}
    flags: dict[str, Any] = {"bundle": bundle, "robot": robot}
    for name, value in settings.items():
        part = "robot." if name in sim_names else "eval." if name in eval_names else ""
        flags[part + name] = value
    return build_run_config(None, flags, robots=robots, defaults={"clock": "sim"})


def attempt_config(cfg: RunConfig) -> RunConfig:
    """`cfg` as one attempt runs it: one episode, the sim clock's heartbeat."""
    kind = robot_kind(cfg.robot)
    if not kind.simulated:
        raise ConfigError(
            f"eval needs a simulated robot (only it knows whether a grasp held), "
            f"not --robot {cfg.robot}"
        )
    watchdog = cfg.watchdog
    if cfg.sim_clock and watchdog.heartbeat_s < SIM_CLOCK_HEARTBEAT_S:
        watchdog = replace(watchdog, heartbeat_s=SIM_CLOCK_HEARTBEAT_S)
    return replace(cfg, episodes=1, watchdog=watchdog, record=None, json=None)


@dataclass(frozen=True)
class Attempt:
    x: float
    y: float
    seed: int  # the world's reset seed: start pose, encoder bias, look, heading


@dataclass
class AttemptResult:
    attempt: Attempt
    success: bool  # the world's truth
    detected: bool  # the loop's own grasp detection
    steps: int
    fault: str | None
    # Perception-gate holds by check (runtime/perception.py).
    perception_holds: dict[str, int] = field(default_factory=dict)
    # What happened, from the simulator's truth (attempt_trace.py OUTCOMES).
    outcome: str = ""
    # The trace's counts behind it: holds lost by an open request / with the fingers
    # still told to close, and the highest lift while held (m).
    releases: int = 0
    slips: int = 0
    max_lift_held_m: float = 0.0


@dataclass
class EvalReport:
    config: RunConfig
    results: list[AttemptResult] = field(default_factory=list)
    # The signal that cut the evaluation short (its results are then partial), or None.
    stopped: str | None = None

    def summary(self) -> dict[str, Any]:
        n = len(self.results)
        ok = [r for r in self.results if r.success]
        per: dict[tuple[float, float], list[AttemptResult]] = {}
        for r in self.results:
            per.setdefault((r.attempt.x, r.attempt.y), []).append(r)
        return {
            "attempts": n,
            "successes": len(ok),
            "success_rate": len(ok) / n if n else 0.0,
            "mean_steps": float(np.mean([r.steps for r in self.results])) if n else 0.0,
            "mean_steps_success": float(np.mean([r.steps for r in ok])) if ok else None,
            "detection_disagreements": int(sum(r.success != r.detected for r in self.results)),
            "stopped": self.stopped,
            "faults": [r.fault for r in self.results if r.fault],
            "outcomes": _outcome_counts(self.results),
            "perception_holds": _hold_totals(self.results),
            "attempts_with_perception_holds": sum(bool(r.perception_holds) for r in self.results),
            "settings": settings_of(self.config),
            "per_position": [
                {
                    "x": round(x, 4),
                    "y": round(y, 4),
                    "successes": sum(bool(r.success) for r in rs),
                    "attempts": len(rs),
                }
                for (x, y), rs in per.items()
            ],
            # Each attempt in the order run: where, its seed, and what happened.
            "per_attempt": [
                {
                    "x": round(r.attempt.x, 4),
                    "y": round(r.attempt.y, 4),
                    "seed": r.attempt.seed,
                    "outcome": r.outcome,
                    "steps": r.steps,
                    "releases": r.releases,
                    "slips": r.slips,
                    "max_lift_held_m": round(r.max_lift_held_m, 4),
                }
                for r in self.results
            ],
        }


def _outcome_counts(results: Sequence[AttemptResult]) -> dict[str, int]:
    """Attempts by outcome, every outcome named (0 where none), in OUTCOMES' order."""
    return {k: sum(r.outcome == k for r in results) for k in OUTCOMES}


def _hold_totals(results: Sequence[AttemptResult]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in results:
        for k, n in r.perception_holds.items():
            total[k] = total.get(k, 0) + n
    return total


def settings_of(cfg: RunConfig) -> dict[str, Any]:
    sim = cfg.robot_settings or SimSettings()
    return {
        "grid": cfg.eval.grid,
        "repeats": cfg.eval.repeats,
        "max_steps": cfg.max_steps or SIM_MAX_STEPS,
        "gap": sim.gap,
        "moving": sim.moving,
        "clutter": sim.clutter,
        "gt_mask": cfg.gt_mask,
        "expert": cfg.eval.expert,
        "clock": cfg.clock,
        "seed": cfg.seed,
        "bundle": cfg.bundle,
        "floor_z": cfg.limiter.floor_z,
        # A mis-mounted sim camera and the mount that corrects it (hand-eye).
        "camera_mount_error": sim.camera_mount_error,
        "mount": cfg.mount,
    }


def grid_shape(n: int, workspace: Sequence[float]) -> tuple[int, int]:
    """(nx, ny) with nx * ny == n whose cells are the closest to square over `workspace`."""
    x0, x1, y0, y1 = workspace
    want = math.log((x1 - x0) / (y1 - y0))
    pairs = [(nx, n // nx) for nx in range(1, n + 1) if n % nx == 0]
    # Ties (a square workspace) go to more rows along x, the arm's reach direction.
    return min(pairs, key=lambda p: (abs(math.log(p[0] / p[1]) - want), -p[0]))


def grid_positions(n: int, workspace: Sequence[float]) -> list[tuple[float, float]]:
    """`n` positions on a regular grid: the centres of nx x ny equal cells of `workspace`."""
    x0, x1, y0, y1 = workspace
    nx, ny = grid_shape(n, workspace)
    xs = [x0 + (i + 0.5) * (x1 - x0) / nx for i in range(nx)]
    ys = [y0 + (j + 0.5) * (y1 - y0) / ny for j in range(ny)]
    return [(x, y) for x in xs for y in ys]


def protocol_attempts(cfg: RunConfig, workspace: Sequence[float]) -> list[Attempt]:
    """Each grid position `repeats` times, each repeat with its own seed."""
    out = []
    for i, (x, y) in enumerate(grid_positions(cfg.eval.grid, workspace)):
        for r in range(cfg.eval.repeats):
            out.append(Attempt(x, y, cfg.seed * 1_000_003 + i * 1009 + r))
    return out


class AttemptsStopped(Exception):
    """A signal (Ctrl-C, SIGTERM) ended a series of attempts early.

    The run's own handler holds the arm and ends its episode; this carries the word on
    to whoever drives the series (an evaluation, a DAgger collection) so it stops too
    instead of starting the next attempt. ``results`` are the attempts that finished.
    """

    def __init__(self, signal_name: str, results: list[AttemptResult]) -> None:
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name
        self.results = results


def run_attempts(
    run_cfg: RunConfig,
    attempts: Sequence[Attempt],
    *,
    policy: PolicyFactory | None = None,
    progress: Callable[[AttemptResult, int, int], None] | None = None,
    sim: SimConfig | None = None,
) -> list[AttemptResult]:
    """Run each attempt as a one-episode `grasprt run` on the simulated Sawyer.

    `policy` builds what acts in the bundle's place (the expert, a training policy);
    None: the bundle's own graphs. `sim` replaces the simulation settings `run_cfg`
    names (training draws its own dynamics gap); the evaluation protocol leaves it None.
    A fresh Run per attempt (fresh world, connected drivers, sessions) costs a fraction
    of a second and keeps attempts independent: a fault stop counts as that attempt's
    failure, not the evaluation's end, and progress comes as each attempt ends.
    """
    cfg = attempt_config(run_cfg)
    results: list[AttemptResult] = []
    with _signals_noted() as pending:
        for a in attempts:
            if pending:
                # Between attempts: no run holds the handlers, the series notes it.
                raise AttemptsStopped(pending[0], results)
            _one_attempt(cfg, a, results, policy, sim)
            if progress is not None:
                progress(results[-1], len(results), len(attempts))
    return results


@contextlib.contextmanager
def _signals_noted() -> Iterator[list[str]]:
    """SIGINT/SIGTERM noted, not fatal, for the whole series: a run installs its own
    handler while it executes; this one covers the moments between runs."""
    pending: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending  # only the main thread may set handlers; nothing to cover
        return

    def note(signum: int, frame: object) -> None:
        pending.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _one_attempt(
    cfg: RunConfig,
    a: Attempt,
    results: list[AttemptResult],
    policy: PolicyFactory | None,
    sim: SimConfig | None,
) -> None:
    """One attempt as a one-episode run; its result is appended to `results`."""

    def make(cfg: RunConfig, bundle: Any) -> Any:
        if sim is None:
            drivers = build_drivers(cfg, bundle)  # checks the run against the robot kind
        else:
            # Training's own dynamics gap replaces [sim]'s (DAgger draws one per episode);
            # every simulated kind's builder takes it (sim_drivers, mujoco_drivers).
            kind = robot_kind(cfg.robot)
            check_run(cfg, kind, bundle)
            drivers = kind.builder()(cfg, bundle, sim)
        world = drivers.world
        drivers.setup_episode = lambda n: world.reset(a.seed, sphere_xy=(a.x, a.y))
        return drivers

    from grasprt.drivers.sim.views import held_out_views

    trace = AttemptTrace()
    # Held-out frames to gate a reduced precision on ([inference] from a tuned file);
    # the verdict is measured once per process, not per attempt (quantize.py).
    run = Run(
        cfg,
        make_drivers=make,
        policy=policy,
        views=held_out_views,
        # Called only while the run executes, by when `run` is bound.
        on_cycle=lambda episode, step, info: trace.observe(run.drivers.world.grasp_truth()),
    )
    world = run.drivers.world
    report = run.execute()
    if report.stopped and not report.episodes:
        raise AttemptsStopped(report.stopped, results)
    if not report.episodes:
        raise ConfigError("evaluation: a run ended before its attempt")
    ep = report.episodes[0]
    # The truth after the loop's hold: the sphere held and lifted 5 cm off the table.
    success = bool(world.grasp_succeeded())
    res = AttemptResult(
        a, success, ep.success, ep.steps, ep.fault, dict(ep.perception_holds),
        outcome=trace.outcome(success, ep.fault),
        releases=trace.releases,
        slips=trace.slips,
        max_lift_held_m=trace.max_lift_held_m,
    )
    results.append(res)
    if report.stopped:
        raise AttemptsStopped(report.stopped, results)  # the operator wants out


def sim_expert(run: Run, config: ExpertConfig | None = None) -> Expert:
    """The scripted expert for the run's world, told where its limiter floor is."""
    from grasprt.drivers.sim.expert import Expert

    world = run.drivers.world
    floor = run.cfg.limiter.floor_height(world.table_z)
    return Expert(world, run.bundle.action_scale, config, floor_z=floor)


def expert_policy(run: Run) -> Any:
    from grasprt.drivers.sim.expert import ExpertPolicy

    return ExpertPolicy(sim_expert(run))


def evaluate(
    cfg: RunConfig,
    *,
    progress: Callable[[AttemptResult, int, int], None] | None = None,
    policy: PolicyFactory | None = None,
) -> EvalReport:
    """The protocol under `cfg` (`cfg.eval`: grid, repeats, expert)."""
    attempts = protocol_attempts(cfg, SceneConfig().workspace)
    factory = policy or (expert_policy if cfg.eval.expert else None)
    report = EvalReport(cfg)
    try:
        report.results = run_attempts(cfg, attempts, policy=factory, progress=progress)
    except AttemptsStopped as e:
        report.results, report.stopped = e.results, e.signal_name
    return report
