"""The paper's evaluation protocol in the simulator: a grid of sphere positions, repeats each.

Every attempt runs through :class:`~grasprt.runtime.runner.Run`, the very code
`grasprt run` uses (model view, segmenter, threshold, controller, limiter, gate,
watchdogs); only the clock differs: the simulator's own by default, so an evaluation
runs as fast as the machine allows, or a monotonic one with ``realtime``.

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

from grasprt.config import RunConfig, SimSettings
from grasprt.errors import ConfigError
from grasprt.runtime.runner import Run, limiter_floor
from grasprt.runtime.watchdog import StalenessConfig

if TYPE_CHECKING:
    from grasprt.drivers.sim.config import SimConfig
    from grasprt.drivers.sim.expert import Expert

GAPS = ("default", "none", "large")


@dataclass(frozen=True)
class EvalConfig:
    bundle: str
    grid: int = 50
    repeats: int = 3
    max_steps: int = 150
    gap: str = "default"
    moving: bool = False
    gt_mask: bool = False
    expert: bool = False
    realtime: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.grid < 1:
            raise ConfigError("--grid must be at least 1 position")
        if self.repeats < 1:
            raise ConfigError("--repeats must be at least 1")
        if self.max_steps < 1:
            raise ConfigError("--max-steps must be at least 1")
        if self.gap not in GAPS:
            raise ConfigError(f"--gap must be one of {', '.join(GAPS)}, not {self.gap!r}")
        if self.seed < 0:
            raise ConfigError("--seed must be >= 0")

    def run_config(self) -> RunConfig:
        # On the simulator's clock no arm moves in wall time: the wall-clock heartbeat
        # would only measure how busy the machine is (a loaded CI box trips 0.5 s). A
        # hung loop still trips the long one; every other watchdog runs on sim time.
        watchdog = StalenessConfig() if self.realtime else StalenessConfig(heartbeat_s=30.0)
        return RunConfig(
            robot="sim",
            watchdog=watchdog,
            bundle=self.bundle,
            fast=not self.realtime,
            max_steps=self.max_steps,
            gt_mask=self.gt_mask,
            seed=self.seed,
            sim=SimSettings(gap=self.gap, moving=self.moving),
        )


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


@dataclass
class EvalReport:
    config: EvalConfig
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
            "settings": {
                "grid": self.config.grid,
                "repeats": self.config.repeats,
                "max_steps": self.config.max_steps,
                "gap": self.config.gap,
                "moving": self.config.moving,
                "gt_mask": self.config.gt_mask,
                "expert": self.config.expert,
                "realtime": self.config.realtime,
                "seed": self.config.seed,
                "bundle": self.config.bundle,
            },
            "per_position": [
                {
                    "x": round(x, 4),
                    "y": round(y, 4),
                    "successes": sum(bool(r.success) for r in rs),
                    "attempts": len(rs),
                }
                for (x, y), rs in per.items()
            ],
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


def protocol_attempts(cfg: EvalConfig, workspace: Sequence[float]) -> list[Attempt]:
    """Each grid position `repeats` times, each repeat with its own seed."""
    out = []
    for i, (x, y) in enumerate(grid_positions(cfg.grid, workspace)):
        for r in range(cfg.repeats):
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


# Builds the object in the controller's place for a run (a network pipeline, the
# expert, a training policy); None keeps the bundle's own ONNX pipeline.
PipelineFactory = Callable[[Run, Any], Any]


def run_attempts(
    run_cfg: RunConfig,
    attempts: Sequence[Attempt],
    *,
    pipeline_factory: PipelineFactory | None = None,
    progress: Callable[[AttemptResult, int, int], None] | None = None,
    sim: SimConfig | None = None,
) -> list[AttemptResult]:
    """Run each attempt as a one-episode `grasprt run` on the simulated Sawyer.

    `sim` replaces the simulation settings `run_cfg` names (training draws its own
    dynamics gap); the evaluation protocol leaves it None. A fresh Run per attempt
    (fresh world, connected drivers, sessions) costs a fraction of a second and keeps
    attempts independent: a fault stop counts as that attempt's failure, not the
    evaluation's end, and progress comes as each attempt ends.
    """
    cfg = replace(run_cfg, episodes=1)
    results: list[AttemptResult] = []
    with _signals_noted() as pending:
        for a in attempts:
            if pending:
                # Between attempts: no run holds the handlers, the series notes it.
                raise AttemptsStopped(pending[0], results)
            _one_attempt(cfg, a, results, pipeline_factory, sim)
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
    pipeline_factory: PipelineFactory | None,
    sim: SimConfig | None,
) -> None:
    """One attempt as a one-episode run; its result is appended to `results`."""
    from grasprt.profiles import SAWYER
    from grasprt.runtime.runner import sim_drivers

    drivers = sim_drivers(cfg, SAWYER, sim)
    world = drivers.world

    def setup(n: int, world: Any = world, a: Attempt = a) -> None:
        world.reset(a.seed, sphere_xy=(a.x, a.y))

    run = Run(cfg, drivers=replace(drivers, setup_episode=setup))
    if pipeline_factory is not None:
        run.pipeline = pipeline_factory(run, world)
    report = run.execute()
    if report.stopped and not report.episodes:
        raise AttemptsStopped(report.stopped, results)
    if not report.episodes:
        raise ConfigError("evaluation: a run ended before its attempt")
    ep = report.episodes[0]
    # The truth after the loop's hold: the sphere held and lifted 5 cm off the table.
    res = AttemptResult(a, bool(world.grasp_succeeded()), ep.success, ep.steps, ep.fault)
    results.append(res)
    if report.stopped:
        raise AttemptsStopped(report.stopped, results)  # the operator wants out


def sim_expert(run: Run, world: Any) -> Expert:
    """The scripted expert for `world`, told where this run's limiter floor is."""
    from grasprt.drivers.sim.expert import Expert

    floor = limiter_floor(run.cfg, world.table_z)
    return Expert(world, run.bundle.action_scale, floor_z=floor)


def expert_factory(run: Run, world: Any) -> Any:
    from grasprt.drivers.sim.expert import ExpertPipeline

    return ExpertPipeline(sim_expert(run, world))


def evaluate(
    cfg: EvalConfig,
    *,
    progress: Callable[[AttemptResult, int, int], None] | None = None,
    pipeline_factory: PipelineFactory | None = None,
) -> EvalReport:
    from grasprt.drivers.sim.config import SceneConfig

    attempts = protocol_attempts(cfg, SceneConfig().workspace)
    factory = pipeline_factory or (expert_factory if cfg.expert else None)
    report = EvalReport(cfg)
    try:
        report.results = run_attempts(
            cfg.run_config(), attempts, pipeline_factory=factory, progress=progress
        )
    except AttemptsStopped as e:
        report.results, report.stopped = e.results, e.signal_name
    return report
