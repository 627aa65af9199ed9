"""The loop end to end on the simulated Sawyer, with real ONNX Runtime sessions.

Faults are injected the way they happen on a robot: a camera that stops delivering,
a robot whose state stops updating, a controller that emits NaN, a model too slow for
the period, and a model that hangs. In each, the arm must end holding still with no
command after the fault. `CountingRobot` wraps the simulated robot to see every call
the robot receives (our own interface, not a stand-in for anything external).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import (
    color_segmenter,
    constant_controller,
    nan_controller,
    ramp_controller,
    write_bundle,
)

from grasprt.bundle import load_bundle
from grasprt.clock import SimClock
from grasprt.config import PerceptionSettings, RunConfig, WatchdogSettings
from grasprt.drivers.sim.config import FaultConfig, SimConfig, gap_preset
from grasprt.drivers.sim.kind import sim_drivers
from grasprt.profiles import SAWYER
from grasprt.runtime.loop import READ_STAGES, WRITE_STAGES
from grasprt.runtime.policy import FUSED_STAGE
from grasprt.runtime.record_reader import read_record
from grasprt.runtime.runner import PolicyFactory, Run, onnx_policy
from grasprt.types import Drivers, JointCommand, Observation, RobotState

REPO = Path(__file__).resolve().parents[2]


class CountingRobot:
    """Passes everything to the real simulated robot and logs each call in order."""

    def __init__(self, robot) -> None:
        self._robot = robot
        self.name = robot.name
        self.joint_names = robot.joint_names
        self.calls: list[tuple[str, str]] = []  # (kind, thread name)
        self.commands: list[JointCommand] = []

    def connect(self) -> None:
        self._robot.connect()

    def disconnect(self) -> None:
        self._robot.disconnect()

    def read_state(self) -> RobotState:
        return self._robot.read_state()

    def command(self, cmd: JointCommand) -> None:
        self.calls.append(("command", threading.current_thread().name))
        self.commands.append(cmd)
        self._robot.command(cmd)

    def hold(self) -> None:
        self.calls.append(("hold", threading.current_thread().name))
        self._robot.hold()

    def kinds_after_first(self, kind: str) -> list[str]:
        kinds = [k for k, _ in self.calls]
        return kinds[kinds.index(kind) :] if kind in kinds else []


def make_run(
    tmp_path: Path,
    controller=None,
    *,
    fast: bool = True,
    faults: FaultConfig | None = None,
    record: bool = False,
    max_steps: int = 40,
    episodes: int = 1,
    watchdog: WatchdogSettings | None = None,
    gap: str = "none",
    action_scale: float = 0.05,
    policy: PolicyFactory | None = None,
    perception: PerceptionSettings | None = None,
) -> tuple[Run, Drivers, CountingRobot]:
    bundle = write_bundle(
        tmp_path / "bundle",
        color_segmenter(),
        controller or ramp_controller(list(SAWYER.neutral)),
        action_scale=[action_scale] * 7,
    )
    cfg = RunConfig(
        robot="sim",
        bundle=str(bundle),
        clock="sim" if fast else "wall",
        episodes=episodes,
        max_steps=max_steps,
        record=str(tmp_path / "run.mcap") if record else None,
        watchdog=watchdog or WatchdogSettings(),
        # The synthetic controllers here swing the camera off the sphere, and the
        # perception gate would rightly hold them; its own tests: test_perception.py.
        perception=perception or PerceptionSettings(enabled=False),
    )
    sim = SimConfig(gap=gap_preset(gap), faults=faults or FaultConfig())
    drivers = sim_drivers(cfg, load_bundle(bundle), sim)
    robot = CountingRobot(drivers.robot)
    drivers = replace(drivers, robot=robot)
    return Run(cfg, drivers=drivers, policy=policy), drivers, robot


def test_healthy_run_commands_every_step_and_records_it(tmp_path: Path) -> None:
    run, _, robot = make_run(tmp_path, record=True, max_steps=30, episodes=2)
    report = run.execute()
    s = report.summary()
    assert s["episodes"] == 2 and not s["faults"] and s["overruns"] == 0
    assert s["steps"] == 60
    assert len(robot.commands) == 60
    assert all(np.all(np.isfinite(c.q)) for c in robot.commands)
    # The stages tile the cycle: every one is timed in every commanded cycle, named for
    # what ran (the fused graph is one stage), and together they never exceed it.
    timer = run.loop.timer
    assert timer.stages == (*READ_STAGES, FUSED_STAGE, *WRITE_STAGES)
    rows = timer.table[: timer.n]
    assert np.all(np.isfinite(rows)) and np.all(rows >= 0)
    assert np.all(rows.sum(axis=1) <= timer.cycle_ms[: timer.n] + 1e-9)

    rec = read_record(tmp_path / "run.mcap")
    assert rec.complete
    assert len(rec.cycles) == 60
    assert all(m is not None and m.shape == (100, 100) for m in rec.masks)
    assert rec.run["config"]["max_steps"] == 30
    assert rec.summary["steps"] == 60
    ends = [e for e in rec.events if e["kind"] == "episode_end"]
    assert [e["episode"] for e in ends] == [0, 1]
    # What was commanded is what the limiter decided, cycle by cycle.
    np.testing.assert_allclose(rec.cycles[5]["command"], robot.commands[5].q, atol=1e-6)
    # Photon to command: the frame's capture to the command, before the record was made
    # (so never more than the frame's age then), and the run's summary of the same. On
    # the sim clock a frame is rendered for the cycle that takes it: ages are ~0 here.
    p2c = [c["photon_to_command_ms"] for c in rec.cycles]
    assert all(0 <= p <= c["frame_age_ms"] for p, c in zip(p2c, rec.cycles, strict=True))
    assert s["photon_to_command_ms"]["max"] == pytest.approx(max(p2c), abs=1e-9)


def test_same_seed_same_commands(tmp_path: Path) -> None:
    a, _, ra = make_run(tmp_path / "a", max_steps=25, gap="default")
    b, _, rb = make_run(tmp_path / "b", max_steps=25, gap="default")
    a.execute()
    b.execute()
    assert len(ra.commands) == len(rb.commands) == 25
    for ca, cb in zip(ra.commands, rb.commands, strict=True):
        np.testing.assert_array_equal(ca.q, cb.q)


def test_every_command_is_within_one_limited_step(tmp_path: Path) -> None:
    # A controller that asks for a huge jump every cycle: the limiter must cut it.
    run, _, robot = make_run(
        tmp_path, constant_controller([1.0] * 7 + [0.0]), max_steps=20, action_scale=0.5
    )
    report = run.execute()
    assert report.summary()["limited_steps"] == 20
    max_step = np.array(SAWYER.velocity) * 0.5 / 10.0
    prev = None
    for c in robot.commands:
        if prev is not None:
            assert np.all(np.abs(c.q - prev) <= max_step + 1e-9)
        prev = c.q


def test_nan_controller_faults_and_nothing_moves_after(tmp_path: Path) -> None:
    run, _, robot = make_run(tmp_path, nan_controller(3), record=True)
    report = run.execute()
    assert report.fault is not None and "non-finite" in report.fault
    assert robot.commands == []  # the very first action was NaN: nothing was commanded
    assert robot.calls and robot.calls[-1][0] == "hold"
    rec = read_record(tmp_path / "run.mcap")
    assert rec.complete
    assert rec.cycles[-1]["verdict"] == "stop"
    assert np.isnan(rec.cycles[-1]["action"][3])  # recorded as it came, NaN restored


def test_stalled_camera_holds_then_stops(tmp_path: Path) -> None:
    run, _, robot = make_run(
        tmp_path, faults=FaultConfig(camera_freeze_after_s=1.0), max_steps=100, record=True
    )
    report = run.execute()
    ep = report.episodes[0]
    assert ep.fault is not None and "frame" in ep.fault
    # Frames stopped at 1.0 s: a stop comes frame_stop_s later, well before 100 steps.
    assert ep.steps < 100
    cycles = read_record(tmp_path / "run.mcap").cycles
    verdicts = [c["verdict"] for c in cycles]
    stale = next(i for i, c in enumerate(cycles) if c["verdict"] == "hold" and "old" in c["reason"])
    # Commands while the frames were fresh, then only holds: stale first, too stale last.
    assert set(verdicts[:stale]) == {"ok"} and set(verdicts[stale:]) == {"hold"}
    assert all(c["photon_to_command_ms"] is None for c in cycles[stale:])  # nothing sent
    assert ep.holds == len(verdicts) - stale >= 2
    kinds = [k for k, _ in robot.calls]
    assert kinds[:stale] == ["command"] * stale
    # Every call after the last command is a hold: one per hold cycle, the latch's, and
    # the run's own on the way out.
    assert kinds[stale:] == ["hold"] * (ep.holds + 2)


def test_stale_robot_state_stops(tmp_path: Path) -> None:
    run, _, robot = make_run(tmp_path, faults=FaultConfig(state_stall_after_s=0.5), max_steps=100)
    report = run.execute()
    assert report.fault is not None and "state" in report.fault
    assert robot.calls[-1][0] == "hold"


class SlowPolicy:
    """The bundle's policy, each step costing `cost_s` of simulated time."""

    def __init__(self, policy, clock: SimClock, cost_s: float) -> None:
        self._p = policy
        self._clock = clock
        self._cost = cost_s
        self.stages, self.mask = policy.stages, policy.mask

    def step(self, obs: Observation, mark) -> np.ndarray:
        self._clock.advance(self._cost)
        return self._p.step(obs, mark)


def test_slow_model_overrun_streak_stops(tmp_path: Path) -> None:
    run, _, robot = make_run(
        tmp_path,
        max_steps=50,
        policy=lambda run: SlowPolicy(onnx_policy(run), run.drivers.clock, 0.25),
    )
    report = run.execute()
    ep = report.episodes[0]
    assert ep.fault is not None and "overrun" in ep.fault
    assert ep.overruns >= 5
    assert robot.calls[-1][0] == "hold"


class HangingPolicy:
    """The bundle's policy, hanging once inside a step (a deadlock, a GC pause)."""

    def __init__(self, policy, hang_at: int, release: threading.Event) -> None:
        self._p = policy
        self._n = 0
        self._hang_at = hang_at
        self._release = release
        self.hung = threading.Event()
        self.stages, self.mask = policy.stages, policy.mask

    def step(self, obs: Observation, mark) -> np.ndarray:
        self._n += 1
        if self._n == self._hang_at:
            self.hung.set()
            self._release.wait(timeout=10.0)
        return self._p.step(obs, mark)


def test_hung_loop_watchdog_holds_from_its_own_thread(tmp_path: Path) -> None:
    release = threading.Event()
    made: list[HangingPolicy] = []

    def hanging(run: Run) -> HangingPolicy:
        made.append(HangingPolicy(onnx_policy(run), hang_at=5, release=release))
        return made[0]

    run, _, robot = make_run(
        tmp_path,
        fast=False,
        max_steps=60,
        watchdog=WatchdogSettings(heartbeat_s=0.3),
        policy=hanging,
        record=True,
    )

    def release_after_trip() -> None:
        made[0].hung.wait(timeout=30)
        # Let the watchdog see the loop is dead, then unblock the loop.
        deadline = threading.Event()
        for _ in range(100):
            if any(t != "MainThread" for k, t in robot.calls if k == "hold"):
                break
            deadline.wait(0.05)
        release.set()

    helper = threading.Thread(target=release_after_trip)
    helper.start()
    report = run.execute()
    helper.join()
    assert report.fault is not None and "heartbeat" in report.fault
    watchdog_holds = [
        i for i, (k, t) in enumerate(robot.calls) if k == "hold" and t != "MainThread"
    ]
    assert watchdog_holds, "the watchdog thread never told the robot to hold"
    # The four policy steps before the hang were commanded (a wall-clock start may hold
    # for a first frame); after the watchdog's hold the robot heard nothing but holds.
    before = [k for k, _ in robot.calls[: watchdog_holds[0]]]
    assert before.count("command") == 4 and set(before) <= {"command", "hold"}
    assert {k for k, _ in robot.calls[watchdog_holds[0] :]} == {"hold"}
    # The loop woke up after the latch and finished its step: that command was refused
    # at the gate, not sent.
    assert run.loop is not None and run.loop.gate.latched
    assert run.loop.gate.refused_after_latch == 1
    # ... and the record says so: that cycle is a stop, not a command that never left.
    cycles = read_record(tmp_path / "run.mcap").cycles
    assert [c["verdict"] for c in cycles].count("ok") == 4
    assert cycles[-1]["verdict"] == "stop" and "heartbeat" in cycles[-1]["reason"]


def test_a_run_without_a_floor_says_so_before_it_moves(tmp_path: Path) -> None:
    # The sim always knows its table; a driver that does not (a real arm with no
    # `floor_z` set) leaves the limiter without a floor, and the run must say so.
    run, drivers, robot = make_run(tmp_path, max_steps=3)
    said: list[tuple[str, int]] = []
    bare = Run(
        run.cfg,
        drivers=replace(drivers, table_z=None),
        progress=lambda line: said.append((line, len(robot.commands))),
    )
    bare.execute()
    warned = [n for line, n in said if "no floor configured" in line]
    assert warned == [0], said  # once, before the first command
    assert robot.commands

    run2, drivers2, robot2 = make_run(tmp_path / "floor", max_steps=3)
    lines: list[str] = []
    Run(run2.cfg, drivers=drivers2, progress=lines.append).execute()
    assert robot2.commands and not any("no floor" in line for line in lines)
