"""The serial heartbeat against an emulated watchdog on a real pty."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serial_emulators import HeartbeatMonitorEmulator, Pty, point_link, wait_for

from grasprt.drivers.heartbeat import (
    FLAG_HEALTHY,
    FLAG_HOLDING,
    SerialHeartbeat,
    crc8,
    decode_frame,
    encode_frame,
)
from grasprt.errors import DriverError
from grasprt.types import Heartbeat


@dataclass
class Rig:
    pty: Pty
    monitor: HeartbeatMonitorEmulator
    link: Path
    heartbeat: SerialHeartbeat

    def beat_and_wait(self, n: int) -> None:
        for _ in range(n):
            seen = len(self.monitor.frames)
            self.heartbeat.beat()
            wait_for(lambda s=seen: len(self.monitor.frames) > s, what="a beat at the monitor")


def make_rig(tmp_path: Path, timeout_s: float) -> Rig:
    pty = Pty()
    monitor = HeartbeatMonitorEmulator(pty.master, timeout_s=timeout_s)
    monitor.start()
    link = tmp_path / "ttyHEARTBEAT"
    point_link(link, pty.name)
    # A long period hint: a beat delayed by a busy CI machine must still be sent.
    hb = SerialHeartbeat(str(link), period_hint_s=5.0, reconnect_backoff_s=0.01)
    return Rig(pty, monitor, link, hb)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    # A generous trip timeout, so a slow CI machine does not trip a healthy run.
    r = make_rig(tmp_path, timeout_s=5.0)
    yield r
    r.heartbeat.disconnect()
    r.monitor.stop()
    r.pty.close()


def test_crc8_check_value_and_frame_round_trip() -> None:
    assert crc8(b"123456789") == 0xF4  # the CRC-8/SMBUS catalogue check value
    frame = encode_frame(0x42, FLAG_HEALTHY)
    assert frame[:3] == bytes((0xA5, 0x42, 0x01))
    assert decode_frame(frame) == (0x42, FLAG_HEALTHY)
    assert decode_frame(frame[:3] + bytes((frame[3] ^ 1,))) is None
    assert decode_frame(b"\x5a" + frame[1:]) is None
    assert encode_frame(256, FLAG_HOLDING)[1] == 0


def test_beats_reach_the_monitor_in_order(rig: Rig) -> None:
    assert isinstance(rig.heartbeat, Heartbeat)
    rig.heartbeat.connect()
    rig.beat_and_wait(5)
    assert rig.monitor.frames == [(seq, FLAG_HEALTHY) for seq in range(1, 6)]
    assert rig.monitor.state == "armed"
    assert len(rig.monitor.gaps) == 4 and all(g > 0 for g in rig.monitor.gaps)
    assert rig.monitor.bad_frames == 0
    assert rig.heartbeat.stats.frames_written == 5


def test_clean_disconnect_disarms_instead_of_tripping(rig: Rig) -> None:
    rig.heartbeat.connect()
    rig.beat_and_wait(2)
    assert rig.monitor.state == "armed"
    rig.heartbeat.disconnect()
    wait_for(lambda: len(rig.monitor.frames) == 3, what="the holding frame")
    assert rig.monitor.frames[-1] == (3, FLAG_HOLDING)
    assert rig.monitor.state == "disarmed"
    # Disarmed, silence is not a fault: even a tiny timeout does not trip it now.
    rig.monitor.timeout_s = 0.001
    time.sleep(0.05)
    assert rig.monitor.state == "disarmed" and rig.monitor.trip_reason is None


def test_missing_beats_trip_and_the_trip_latches_until_reset(tmp_path: Path) -> None:
    r = make_rig(tmp_path, timeout_s=0.1)
    try:
        r.heartbeat.connect()
        r.beat_and_wait(1)
        # No more beats: a dead loop.
        wait_for(lambda: r.monitor.state == "tripped", what="the watchdog to trip")
        assert r.monitor.trip_reason == "no beat for 0.1 s"
        r.beat_and_wait(3)
        assert r.monitor.state == "tripped"  # beats coming back do not clear it
        r.monitor.press_reset()
        assert r.monitor.state == "disarmed"
        r.monitor.timeout_s = 5.0
        r.beat_and_wait(1)
        assert r.monitor.state == "armed"
        r.heartbeat.disconnect()
    finally:
        r.monitor.stop()
        r.pty.close()


def test_trip_request_trips_at_once(rig: Rig) -> None:
    rig.heartbeat.connect()
    rig.beat_and_wait(2)
    rig.heartbeat.trip()
    wait_for(lambda: rig.monitor.state == "tripped", what="trip on request")
    assert rig.monitor.trip_reason == "trip requested by the host"
    assert rig.monitor.frames[-1][1] == 0


def test_garbage_on_the_line_is_skipped(rig: Rig) -> None:
    rig.heartbeat.connect()
    rig.beat_and_wait(1)
    # Line noise, including a false sync byte with a wrong CRC, written on the wire.
    os.write(rig.pty.slave, b"\x00\xa5\x07\x01\x00\xff")
    rig.beat_and_wait(2)
    assert rig.monitor.bad_frames >= 3
    assert [seq for seq, _ in rig.monitor.frames] == [1, 2, 3]
    assert rig.monitor.state == "armed"


def test_replayed_frame_does_not_refresh_the_watchdog(rig: Rig) -> None:
    rig.heartbeat.connect()
    rig.beat_and_wait(1)
    gaps = len(rig.monitor.gaps)
    os.write(rig.pty.slave, encode_frame(1, FLAG_HEALTHY))  # seq 1 again
    wait_for(lambda: rig.monitor.repeats == 1, what="the replay to be seen")
    assert len(rig.monitor.gaps) == gaps


def test_beat_never_raises_while_the_port_is_gone_and_reconnects(rig: Rig) -> None:
    hb = rig.heartbeat
    hb.connect()
    rig.beat_and_wait(1)
    rig.monitor.stop()
    rig.pty.close()
    for _ in range(200):
        hb.beat()  # must return at once with no port behind it
    assert hb.stats.beats == 201
    wait_for(lambda: hb.stats.write_errors >= 1, what="the writer to notice the lost port")
    # A new adapter node appears; udev-style, the link now points at it.
    rig.pty = Pty()
    rig.monitor = HeartbeatMonitorEmulator(rig.pty.master, timeout_s=5.0)
    rig.monitor.start()
    point_link(rig.link, rig.pty.name)

    def beating_reaches_new_monitor() -> bool:
        hb.beat()
        return rig.monitor.state == "armed"

    wait_for(beating_reaches_new_monitor, what="beats through the new port")
    assert hb.stats.reconnects >= 1
    assert rig.monitor.bad_frames == 0


def test_stale_beat_is_dropped_not_sent_late(tmp_path: Path) -> None:
    first = Pty()
    link = tmp_path / "ttyHB"
    point_link(link, first.name)
    hb = SerialHeartbeat(str(link), period_hint_s=0.01, reconnect_backoff_s=0.01)
    hb.connect()
    # The adapter is unplugged and its node disappears before the next beat.
    first.close()
    point_link(link, "/dev/does-not-exist-grasprt")
    second = Pty()
    monitor = HeartbeatMonitorEmulator(second.master, timeout_s=5.0)
    monitor.start()
    try:
        hb.beat()
        wait_for(lambda: hb.stats.stale_dropped == 1, what="the old beat to be dropped")
        point_link(link, second.name)

        def beating_reaches_monitor() -> bool:
            hb.beat()
            return len(monitor.frames) > 0

        wait_for(beating_reaches_monitor, what="a fresh beat")
        assert monitor.frames[0][0] != 1  # the dropped beat (seq 1) never arrived
    finally:
        hb.disconnect()
        monitor.stop()
        second.close()


def test_missing_port_is_one_line_driver_error() -> None:
    hb = SerialHeartbeat("/dev/does-not-exist-grasprt")
    with pytest.raises(DriverError) as info:
        hb.connect()
    assert "/dev/does-not-exist-grasprt" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_monitor_gone_is_a_fault_until_beats_reach_it_again(tmp_path: Path) -> None:
    r = make_rig(tmp_path, timeout_s=5.0)
    hb = SerialHeartbeat(str(r.link), period_hint_s=0.05, reconnect_backoff_s=0.01)
    try:
        hb.connect()
        r.heartbeat = hb
        r.beat_and_wait(2)
        assert hb.fault() is None
        r.monitor.stop()
        r.pty.close()

        def beating_faults() -> bool:
            hb.beat()
            return hb.fault() is not None

        wait_for(beating_faults, what="the lost monitor to be a fault")
        assert "gone" in (hb.fault() or "") and hb.stats.write_errors >= 1
        r.pty = Pty()
        r.monitor = HeartbeatMonitorEmulator(r.pty.master, timeout_s=5.0)
        r.monitor.start()
        point_link(r.link, r.pty.name)

        def beating_heals() -> bool:
            hb.beat()
            return hb.fault() is None and r.monitor.state == "armed"

        wait_for(beating_heals, what="beats through the new port")
    finally:
        hb.disconnect()
        r.monitor.stop()
        r.pty.close()
