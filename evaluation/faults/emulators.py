"""Serial devices emulated on the master side of real ptys, for the driver tests and
the `grasprt faults` campaign (which unplugs them by closing the master).

The drivers open the pty's slave name with pyserial exactly as they open
``/dev/ttyUSB0`` on a robot PC; these threads play the device at the other end. Both
emulators parse and check frames with their own code (not the drivers'), so a test
passing means two independent implementations agree on the bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path


class Pty:
    """A pseudo-terminal pair; the driver opens ``name`` (or a symlink to it)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        self.name = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def point_link(link: Path, target: str) -> None:
    """Atomically (re)point ``link`` at ``target``, like udev re-creating /dev/serial/by-id."""
    tmp = link.with_name(link.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``cond`` until true; fail the test after a generous bound (never a timing check)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class _MasterThread:
    """Reads the pty master in a thread and hands every chunk to ``_feed``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def _loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.005)
            if ready:
                try:
                    chunk = os.read(self.fd, 512)
                except OSError as err:
                    # EIO while nobody has the slave side open: just wait for the driver.
                    if err.errno != errno.EIO:
                        raise
                    time.sleep(0.005)
                    continue
                with self.lock:
                    self._feed(chunk, time.monotonic())
            with self.lock:
                self._tick(time.monotonic())

    def _feed(self, chunk: bytes, now: float) -> None:
        raise NotImplementedError

    def _tick(self, now: float) -> None:
        pass


# -- Modbus RTU Robotiq 2F ------------------------------------------------------------


def _crc16_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0xA001
    return crc


def _frame(body: bytes) -> bytes:
    crc = _crc16_modbus(body)
    return body + crc.to_bytes(2, "little")


class RobotiqEmulator(_MasterThread):
    """A Robotiq 2F gripper, Modbus slave ``slave_id``, on the master side of a pty.

    Time advances one step per status read ("cycles"): activation takes
    ``activation_polls`` reads; the fingers move ``1 + rSP // 8`` counts a read toward
    ``rPR`` and stop on an object at ``object_at`` (set it from the test).
    """

    OUT = 0x03E8
    IN = 0x07D0

    def __init__(
        self,
        fd: int,
        slave_id: int = 9,
        activation_polls: int = 3,
        activated: bool = False,
        position: int = 0,
    ) -> None:
        super().__init__(fd)
        self.slave_id = slave_id
        self.activation_polls = activation_polls
        self.out_regs = [0, 0, 0]
        self.position = position
        self.object_at: int | None = None
        self.sta = 0
        self.obj = 0
        self._activation_left = activation_polls
        if activated:
            self.out_regs[0] = 0x01 << 8
            self.sta = 3
            self.obj = 3
        # Fault injection and counters, read and set by the tests (under self.lock).
        self.paused = False
        self.garble_next = 0
        self.noise_next = b""
        self.frames_ok = 0
        self.bad_crc = 0
        self.unanswered = 0
        self.status_reads = 0
        self.writes: list[list[int]] = []
        self._buf = bytearray()
        self._last_rx = 0.0

    # -- test controls --------------------------------------------------------------

    def power_cycle(self) -> None:
        with self.lock:
            self.out_regs = [0, 0, 0]
            self.sta = 0
            self.obj = 0
            self._activation_left = self.activation_polls

    @property
    def rACT(self) -> int:
        return (self.out_regs[0] >> 8) & 0x01

    @property
    def rGTO(self) -> int:
        return (self.out_regs[0] >> 11) & 0x01

    @property
    def rPR(self) -> int:
        return self.out_regs[1] & 0xFF

    @property
    def rSP(self) -> int:
        return self.out_regs[2] >> 8

    @property
    def rFR(self) -> int:
        return self.out_regs[2] & 0xFF

    # -- the bus --------------------------------------------------------------------

    def _feed(self, chunk: bytes, now: float) -> None:
        self._buf += chunk
        self._last_rx = now
        while len(self._buf) >= 2:
            need = self._needed()
            if need is None or len(self._buf) < need:
                return
            frame = bytes(self._buf[:need])
            if _crc16_modbus(frame) != 0:
                # A slave drops a bad frame and resynchronises on the next silence.
                self.bad_crc += 1
                self._buf.clear()
                return
            del self._buf[:need]
            self._handle(frame)

    def _tick(self, now: float) -> None:
        # An incomplete frame followed by silence is noise: drop it (3.5-char rule, loosely).
        if self._buf and now - self._last_rx > 0.02:
            self._buf.clear()

    def _needed(self) -> int | None:
        function = self._buf[1]
        if function == 0x10:
            return None if len(self._buf) < 7 else 9 + self._buf[6]
        return 8  # 0x03, 0x04, 0x06 and unknown codes: fixed 8-byte requests

    def _handle(self, frame: bytes) -> None:
        if frame[0] != self.slave_id:
            return
        if self.paused:
            self.unanswered += 1
            return
        self.frames_ok += 1
        function = frame[1]
        address = (frame[2] << 8) | frame[3]
        count = (frame[4] << 8) | frame[5]
        if function == 0x04:
            if address != self.IN or not 1 <= count <= 3:
                self._reply(self._exception(function, 0x02))
                return
            self._step()
            regs = self._status_registers()[:count]
            body = bytes((self.slave_id, 0x04, 2 * count))
            body += b"".join(r.to_bytes(2, "big") for r in regs)
            self._reply(_frame(body))
        elif function == 0x10:
            if address != self.OUT or not 1 <= count <= 3 or frame[6] != 2 * count:
                self._reply(self._exception(function, 0x02))
                return
            values = [int.from_bytes(frame[7 + 2 * i : 9 + 2 * i], "big") for i in range(count)]
            self.writes.append(values)
            self.out_regs[:count] = values
            if not self.rACT:
                self.sta = 0
                self._activation_left = self.activation_polls
            self._reply(_frame(frame[:6]))
        else:
            self._reply(self._exception(function, 0x01))

    def _exception(self, function: int, code: int) -> bytes:
        return _frame(bytes((self.slave_id, function | 0x80, code)))

    def _reply(self, response: bytes) -> None:
        if self.noise_next:
            self.write(self.noise_next)
            self.noise_next = b""
        if self.garble_next:
            self.garble_next -= 1
            response = response[:-3] + bytes((response[-3] ^ 0x5A,)) + response[-2:]
        self.write(response)

    # -- the gripper ----------------------------------------------------------------

    def _step(self) -> None:
        self.status_reads += 1
        if not self.rACT:
            self.sta = 0
            return
        if self.sta != 3:
            self.sta = 1
            self._activation_left -= 1
            if self._activation_left <= 0:
                self.sta = 3
                self.position = 0
                self.obj = 3
            return
        if not self.rGTO:
            return
        target = self.rPR
        if self.obj == 2 and target >= self.position:
            return  # still holding the object
        step = 1 + self.rSP // 8
        if target > self.position:
            nxt = min(target, self.position + step)
            if self.object_at is not None and self.position < self.object_at <= nxt:
                self.position = self.object_at
                self.obj = 2
                return
        else:
            nxt = max(target, self.position - step)
        self.position = nxt
        self.obj = 3 if nxt == target else 0

    def _status_registers(self) -> list[int]:
        status = self.rACT | (self.rGTO << 3) | (self.sta << 4) | (self.obj << 6)
        fault = 0x05 if self.rGTO and self.sta != 3 else 0
        return [status << 8, (fault << 8) | self.rPR, (self.position << 8) | 0x10]


# -- Heartbeat monitor ------------------------------------------------------------------


def _crc8_smbus(data: bytes) -> int:
    crc = 0
    for b in data:
        for i in range(8):
            bit = ((b >> (7 - i)) & 1) ^ (crc >> 7)
            crc = (crc << 1) & 0xFF
            if bit:
                crc ^= 0x07
    return crc


class HeartbeatMonitorEmulator(_MasterThread):
    """The watchdog of drivers/firmware/heartbeat_monitor.ino, on a pty master.

    States: ``disarmed`` (waiting for the first healthy beat; output OK), ``armed``,
    ``tripped`` (latched until :meth:`press_reset`).
    """

    def __init__(self, fd: int, timeout_s: float = 0.3) -> None:
        super().__init__(fd)
        self.timeout_s = timeout_s
        self.state = "disarmed"
        self.trip_reason: str | None = None
        # When it tripped (time.monotonic(), as every process on the host reads it).
        self.tripped_at: float | None = None
        self.frames: list[tuple[int, int]] = []  # (seq, flags) of every valid frame
        self.gaps: list[float] = []  # seconds between successive fresh healthy beats
        self.bad_frames = 0
        self.repeats = 0
        self._buf = bytearray()
        self._last_seq: int | None = None
        self._last_beat: float | None = None

    def press_reset(self) -> None:
        with self.lock:
            if self.state == "tripped":
                self.state = "disarmed"
                self.trip_reason = None
                self.tripped_at = None
                self._last_beat = None

    def _feed(self, chunk: bytes, now: float) -> None:
        self._buf += chunk
        while self._buf:
            if self._buf[0] != 0xA5:
                del self._buf[0]
                self.bad_frames += 1
                continue
            if len(self._buf) < 4:
                return
            if _crc8_smbus(bytes(self._buf[:3])) != self._buf[3]:
                del self._buf[0]  # resync: look for the next 0xA5
                self.bad_frames += 1
                continue
            seq, flags = self._buf[1], self._buf[2]
            del self._buf[:4]
            self._on_frame(seq, flags, now)
            # Appended last: a test that sees the frame also sees the state it caused.
            self.frames.append((seq, flags))

    def _on_frame(self, seq: int, flags: int, now: float) -> None:
        if self.state == "tripped":
            return
        healthy, holding = flags & 0x01, flags & 0x02
        if holding:
            self.state = "disarmed"
            self._last_beat = None
        elif healthy:
            if seq == self._last_seq:
                self.repeats += 1  # a replayed frame vouches for nothing
            else:
                if self._last_beat is not None:
                    self.gaps.append(now - self._last_beat)
                self._last_beat = now
                self.state = "armed"
        else:
            self._trip("trip requested by the host", now)
        self._last_seq = seq

    def _tick(self, now: float) -> None:
        if (
            self.state == "armed"
            and self._last_beat is not None
            and now - self._last_beat > self.timeout_s
        ):
            self._trip(f"no beat for {self.timeout_s:g} s", now)

    def _trip(self, reason: str, now: float) -> None:
        self.state = "tripped"
        self.trip_reason = reason
        self.tripped_at = now
