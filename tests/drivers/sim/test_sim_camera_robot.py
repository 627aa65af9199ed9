"""The sim behind grasprt's Camera and Robot interfaces: frames, threads, faults, seeds."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from grasprt.clock import MonotonicClock, SimClock
from grasprt.drivers.sim import SimConfig, make_sim
from grasprt.drivers.sim.config import FaultConfig
from grasprt.errors import DriverError
from grasprt.profiles import SAWYER
from grasprt.types import Camera, Frame, JointCommand, Robot


def wait_for(predicate, what: str, limit_s: float = 20.0) -> None:
    """Poll until `predicate()`; the limit only stops a broken test from hanging."""
    end = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.005)


def test_the_sim_implements_the_camera_and_robot_interfaces() -> None:
    world, robot, camera = make_sim(SimConfig(), SimClock(), seed=0)
    assert isinstance(camera, Camera) and isinstance(robot, Robot)
    assert camera.name == robot.name == "sim"
    assert robot.joint_names == SAWYER.joint_names
    assert camera.intrinsics is not None and camera.intrinsics.width == 400
    assert world.table_z == SimConfig().scene.table_z


def test_nothing_comes_out_before_connect() -> None:
    _, robot, camera = make_sim(SimConfig(), SimClock(), seed=0)
    assert camera.latest() is None
    with pytest.raises(DriverError, match="not connected"):
        robot.read_state()


def test_a_command_of_the_wrong_size_is_a_driver_error(make) -> None:
    sim = make()
    with pytest.raises(DriverError, match="7 joints"):
        sim.robot.command(JointCommand(np.zeros(6), False, 0.0))


def test_on_demand_frames_follow_the_sim_clock(make) -> None:
    sim = make(seed=1)
    first = sim.camera.latest()
    assert isinstance(first, Frame) and first.stamp == 0.0
    assert sim.camera.latest() is first  # same moment, same frame
    sim.clock.advance(0.1)
    second = sim.camera.latest()
    assert second is not None and second.seq == first.seq + 1
    assert second.stamp == pytest.approx(0.1)
    assert second.image.shape == (400, 400, 3) and second.image.dtype == np.uint8
    sim.world.reset(2)  # a new episode at the same moment is a new picture
    third = sim.camera.latest()
    assert third is not None and third.seq == second.seq + 1
    assert not np.array_equal(third.image, second.image)


def test_threaded_camera_keeps_only_the_newest_frame() -> None:
    clock = MonotonicClock()
    _, _, camera = make_sim(SimConfig(), clock, seed=0)
    assert camera.threaded
    camera.connect()
    try:
        wait_for(lambda: camera.latest() is not None, "a first frame")
        first = camera.latest()
        assert first is not None
        wait_for(lambda: camera._seq >= first.seq + 3, "three more frames")
        newest = camera.latest()
        assert newest is not None
        # Not the next frame in a queue: the frames in between were dropped.
        assert newest.seq >= first.seq + 3
        assert newest.stamp > first.stamp
        stamps = [newest.stamp]
        for _ in range(3):
            wait_for(lambda s=stamps[-1]: camera.latest().stamp > s, "a newer frame")
            stamps.append(camera.latest().stamp)
        assert np.all(np.diff(stamps) > 0)
        assert all(s <= clock.now() for s in stamps)
    finally:
        camera.disconnect()
    assert camera.latest() is None


def test_a_frozen_camera_serves_an_ageing_frame(make) -> None:
    sim = make(SimConfig(faults=FaultConfig(camera_freeze_after_s=0.5)), seed=1)
    stamps = []
    for _ in range(15):
        frame = sim.camera.latest()
        assert frame is not None
        stamps.append(frame.stamp)
        sim.clock.advance(0.1)
    assert max(stamps) == pytest.approx(0.4)
    assert stamps[-1] == stamps[5] == pytest.approx(0.4)
    assert sim.clock.now() - stamps[-1] > 1.0


def test_a_frozen_threaded_camera_stops_producing() -> None:
    clock = MonotonicClock()
    config = SimConfig(faults=FaultConfig(camera_freeze_after_s=0.3))
    _, _, camera = make_sim(config, clock, seed=0)
    start = clock.now()
    camera.connect()
    try:
        wait_for(lambda: clock.now() - start > 0.8, "the freeze to set in")
        frame = camera.latest()
        if frame is not None:  # a very slow machine may not have rendered one in time
            assert frame.stamp < start + 0.3
            assert clock.now() - frame.stamp > 0.5
        assert camera.error is None
    finally:
        camera.disconnect()


def test_a_stalled_state_stops_updating(make) -> None:
    sim = make(SimConfig(faults=FaultConfig(state_stall_after_s=0.5)), seed=1)
    sim.send(sim.world.true_q() + 0.2)
    states = []
    for _ in range(12):
        states.append(sim.robot.read_state())
        sim.clock.advance(0.1)
    stamps = [s.stamp for s in states]
    assert stamps[:5] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert all(s is states[4] for s in states[5:])
    # The arm itself went on moving; only its reports stopped.
    assert sim.world.reported_state().stamp == pytest.approx(1.2)


def test_same_seed_and_commands_same_run(make) -> None:
    def run(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sim = make(SimConfig(moving=True, clutter=3), seed=seed)
        rng = np.random.default_rng(0)
        qs, frames = [], []
        for step in range(12):
            state = sim.robot.read_state()
            frame = sim.camera.latest()
            assert frame is not None
            qs.append(state.q)
            frames.append(frame.image)
            sim.send(state.q + rng.uniform(-0.03, 0.03, 7), closed=step > 8)
            sim.clock.advance(0.1)
        return np.array(qs), np.array(frames), sim.world.sphere_position()

    a, b, c = run(4), run(4), run(5)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])


def test_threads_can_share_the_world(make) -> None:
    """A camera thread renders while the loop thread commands and another one holds."""
    clock = MonotonicClock()
    _, robot, camera = make_sim(SimConfig(), clock, seed=3)
    robot.connect()
    camera.connect()
    errors: list[BaseException] = []

    def holder() -> None:
        try:
            for _ in range(20):
                robot.hold()
                time.sleep(0.002)
        except BaseException as e:  # reported below
            errors.append(e)

    try:
        t = threading.Thread(target=holder)
        t.start()
        last = -1.0
        for _ in range(40):
            state = robot.read_state()
            assert state.stamp >= last and np.all(np.isfinite(state.q))
            last = state.stamp
            robot.command(JointCommand(state.q + 0.001, False, clock.now()))
        t.join()
        wait_for(lambda: camera.latest() is not None, "a frame")
    finally:
        camera.disconnect()
    assert not errors and camera.error is None
