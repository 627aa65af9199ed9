"""The prerendered camera: frames made before timing, handed out in turn, stamped at
delivery; on the wall clock by its own thread, phase-locked to the loop with sync."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from polling import wait_until

from grasprt.bundle import load_bundle
from grasprt.clock import MonotonicClock, SimClock
from grasprt.config import BenchSettings, RunConfig, default_bundle
from grasprt.drivers.prerendered import (
    PRERENDER_FRAMES,
    SYNC_LEAD_S,
    PrerenderedCamera,
    PrerenderedFeed,
    prerender,
)
from grasprt.drivers.registry import build_drivers
from grasprt.types import Frame


def _frames(n: int = 3) -> list[Frame]:
    return [Frame(np.full((4, 4, 3), i, np.uint8), stamp=-1.0, seq=0) for i in range(n)]


def test_on_the_sim_clock_each_moment_gets_the_next_frame_stamped_now() -> None:
    clock = SimClock()
    cam = PrerenderedCamera(_frames(), None, clock)
    assert cam.latest() is None  # not connected
    cam.connect()
    a = cam.latest()
    assert a is not None and a.stamp == 0.0 and a.image[0, 0, 0] == 0
    assert cam.latest() is a  # same moment, same frame
    clock.advance(0.1)
    b = cam.latest()
    assert b.stamp == pytest.approx(0.1) and b.image[0, 0, 0] == 1 and b.seq > a.seq
    clock.advance(0.1)
    cam.latest()
    clock.advance(0.1)
    assert cam.latest().image[0, 0, 0] == 0  # round again
    cam.disconnect()
    assert cam.latest() is None


def test_on_the_wall_clock_a_thread_delivers_at_the_camera_rate() -> None:
    clock = MonotonicClock()
    cam = PrerenderedCamera(_frames(), None, clock, fps=200.0)
    cam.connect()
    try:
        first = cam.latest()
        assert first is not None  # streaming from connect on
        assert wait_until(lambda: cam.delivered >= 5)
        newest = cam.latest()
        assert newest.seq > first.seq and newest.stamp > first.stamp
        assert newest.stamp <= clock.now()
    finally:
        cam.disconnect()
    n = cam.delivered
    assert not wait_until(lambda: cam.delivered > n, timeout_s=0.1)  # the thread is gone


def test_sync_puts_deliveries_a_lead_before_the_loops_requests() -> None:
    cam = PrerenderedCamera(_frames(), None, SimClock(), fps=30.0, sync=True)
    period = 1 / 30
    assert cam._next_due(1.0, period) == pytest.approx(1.0 + period)  # no request yet
    cam._asked = 2.0
    due = cam._next_due(2.5, period)
    k = (due - (2.0 - SYNC_LEAD_S)) / period
    assert due > 2.5 and due - 2.5 <= period
    assert k == pytest.approx(round(k))  # on the grid a lead before the request


def test_prerender_times_each_frame_and_keeps_them() -> None:
    made = prerender(lambda: _frames(1)[0], [lambda: None] * 4)
    assert len(made.frames) == 4 and len(made.render_ms) == 4
    s = made.summary()
    assert s["frames"] == 4 and 0 <= s["p50"] <= s["max"]


def test_the_feed_replaces_the_sim_camera_and_renders_once() -> None:
    cfg = RunConfig(bundle=str(default_bundle()))
    bundle = load_bundle(cfg.bundle)
    feed = PrerenderedFeed(build_drivers)
    assert feed.render_summary() is None
    d = feed(cfg, bundle)
    assert isinstance(d.camera, PrerenderedCamera) and d.camera.sync
    assert feed.render_summary()["frames"] == PRERENDER_FRAMES
    made = feed.made
    assert feed(cfg, bundle).camera._frames[0] is made.frames[0]  # not rendered again
    # Each frame is its own scene, with the true mask the sim drew for it.
    assert not np.array_equal(made.frames[0].image, made.frames[1].image)
    assert made.frames[0].truth_mask is not None
    live = replace(cfg, bench=BenchSettings(feed="live"))
    assert not isinstance(feed(live, bundle).camera, PrerenderedCamera)


class _HandClock:
    """A wall-like clock (not the SimClock, so the camera runs its thread) whose time
    the test sets: the thread waits in real seconds for a frame due in clock seconds."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)


def test_a_frame_whose_time_has_come_is_taken_even_before_its_thread_runs() -> None:
    clock = _HandClock()
    cam = PrerenderedCamera(_frames(), None, clock, fps=0.5)  # the thread waits ~2 s
    cam.connect()
    try:
        first = cam.latest()
        assert first.stamp == 100.0
        clock.t = 101.0
        assert cam.latest() is first  # not due yet (every 2 s)
        clock.t = 102.5
        second = cam.latest()
        # Stamped with the time it landed, not the time it was picked up.
        assert second.seq == first.seq + 1 and second.stamp == pytest.approx(102.0)
        assert cam.latest() is second
    finally:
        cam.disconnect()
