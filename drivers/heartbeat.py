"""A serial heartbeat to an external watchdog that trips the e-stop when grasprt stops.

Frame (4 bytes, see docs/serial.md and drivers/firmware/heartbeat_monitor.ino)::

    0xA5 | seq (u8, +1 a beat, wraps) | flags (u8) | CRC-8 over the first three bytes

CRC-8 is poly 0x07, init 0x00, not reflected, no final xor (CRC-8/SMBUS).
Flags: bit0 HEALTHY (a healthy cycle), bit1 HOLDING (the arm has been told to hold and
grasprt is stopping on purpose: the monitor disarms instead of tripping).
A frame with neither bit set asks the monitor to trip at once.

The monitor trips (latched until its manual reset button) when, once armed, no valid
frame with a new sequence number arrives within 300 ms, or on a trip frame.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grasprt.errors import DriverError

log = logging.getLogger(__name__)

SYNC = 0xA5
FLAG_HEALTHY = 0x01
FLAG_HOLDING = 0x02
FRAME_LEN = 4


def crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode_frame(seq: int, flags: int) -> bytes:
    body = bytes((SYNC, seq & 0xFF, flags & 0xFF))
    return body + bytes((crc8(body),))


def decode_frame(frame: bytes) -> tuple[int, int] | None:
    """(seq, flags) of a valid frame, None for anything else."""
    if len(frame) != FRAME_LEN or frame[0] != SYNC or crc8(frame[:3]) != frame[3]:
        return None
    return frame[1], frame[2]


@dataclass
class HeartbeatStats:
    beats: int = 0  # beat() calls
    frames_written: int = 0
    stale_dropped: int = 0  # beats too old to send after a stall or a reconnect
    write_errors: int = 0
    reconnect_attempts: int = 0
    reconnects: int = 0


def _pyserial_factory(**kwargs: Any) -> Any:
    import serial

    return serial.Serial(**kwargs)


class SerialHeartbeat:
    """Implements :class:`grasprt.types.Heartbeat` over a serial port.

    ``beat()`` only stores the newest frame and wakes a writer thread, so a slow or
    vanished port never delays the loop; beats the writer could not send in time are
    dropped rather than sent late (a late beat would vouch for a loop that may be dead).
    """

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        period_hint_s: float = 0.1,
        reconnect_backoff_s: float = 0.05,
        reconnect_backoff_max_s: float = 1.0,
        serial_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.period_hint_s = period_hint_s
        self.max_age_s = 2.0 * period_hint_s
        self.reconnect_backoff_s = reconnect_backoff_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self.stats = HeartbeatStats()
        self._factory = serial_factory or _pyserial_factory
        self._serial: Any = None
        self._cond = threading.Condition()
        # (generation, frame, time queued, must send even if late); newest wins.
        self._pending: tuple[int, bytes, float, bool] | None = None
        self._generation = 0
        self._seq = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        # When a frame last reached the port (time.monotonic()).
        self._delivered_at: float | None = None

    def connect(self) -> None:
        if self._thread is not None:
            return
        self._open()
        with self._cond:
            self._pending = None  # nothing from an earlier session is sent late
            self._stop = False
        self._thread = threading.Thread(target=self._run, name="heartbeat-writer", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        with self._cond:
            self.stats.beats += 1
            self._queue(FLAG_HEALTHY, must_send=False)

    def fault(self) -> str | None:
        """Why the monitor may no longer be hearing us, or None.

        The port is gone (closed after a failed write, not yet reopened) and no frame
        has reached it for longer than a beat may be late: the monitor has either lost
        power (its e-stop open) or will trip soon, so the arm must hold. A reconnect
        faster than that is a hiccup, not a fault.
        """
        with self._cond:
            delivered, lost = self._delivered_at, self._serial is None
        if not lost or delivered is None or self._thread is None:
            return None
        age = time.monotonic() - delivered
        if age <= self.max_age_s:
            return None
        return (
            f"heartbeat monitor on {self.port} gone: no beat delivered for {age:.2f} s "
            f"({self.stats.write_errors} write errors)"
        )

    def trip(self) -> None:
        """Ask the monitor to trip the e-stop now (a fault grasprt cannot handle itself)."""
        self._queue_final(0)

    def disconnect(self, timeout_s: float = 0.5) -> None:
        """Tell the monitor the arm is holding and grasprt stops on purpose, then close.

        Call it only after the arm has been told to hold; without it (a crash) the
        monitor trips, which is the point.
        """
        if self._thread is None:
            return
        self._queue_final(FLAG_HOLDING)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending is not None and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout_s + 1.0)
        self._thread = None
        self._close()

    # -- writer -----------------------------------------------------------------------

    def _queue_final(self, flags: int) -> None:
        with self._cond:
            self._queue(flags, must_send=True)

    def _queue(self, flags: int, must_send: bool) -> None:
        # Caller holds self._cond.
        self._seq = (self._seq + 1) & 0xFF
        self._generation += 1
        frame = encode_frame(self._seq, flags)
        self._pending = (self._generation, frame, time.monotonic(), must_send)
        self._cond.notify_all()

    def _open(self) -> None:
        try:
            import serial
        except ImportError:
            raise DriverError(
                "pyserial not found: install it with pip install 'grasprt[serial]'"
            ) from None

        try:
            self._serial = self._factory(
                port=self.port,
                baudrate=self.baud,
                timeout=0,
                write_timeout=self.period_hint_s,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            raise DriverError(
                f"heartbeat port {self.port}: cannot open: {err}; check the monitor's USB "
                "cable and that your user is in the dialout group"
            ) from None

    def _close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            # A vanished port may fail to close; it is gone either way.
            with contextlib.suppress(Exception):
                ser.close()

    def _run(self) -> None:
        backoff = self.reconnect_backoff_s
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                assert self._pending is not None
                generation, frame, stamp, must_send = self._pending
            if self._serial is None:
                self.stats.reconnect_attempts += 1
                try:
                    self._open()
                except DriverError:
                    with self._cond:
                        self._cond.wait(backoff)
                    backoff = min(2.0 * backoff, self.reconnect_backoff_max_s)
                    self._drop_if_stale()
                    continue
                self.stats.reconnects += 1
                backoff = self.reconnect_backoff_s
                log.warning("heartbeat port %s reopened", self.port)
            if not must_send and time.monotonic() - stamp > self.max_age_s:
                self._take(generation)
                self.stats.stale_dropped += 1
                continue
            try:
                self._serial.write(frame)
            except Exception as err:
                self.stats.write_errors += 1
                log.warning("heartbeat write to %s failed: %s", self.port, err)
                self._close()
                continue
            self.stats.frames_written += 1
            with self._cond:
                self._delivered_at = time.monotonic()
            self._take(generation)

    def _take(self, generation: int) -> None:
        """Clear the pending frame unless a newer one replaced it meanwhile."""
        with self._cond:
            if self._pending is not None and self._pending[0] == generation:
                self._pending = None
                self._cond.notify_all()

    def _drop_if_stale(self) -> None:
        with self._cond:
            if self._pending is None:
                return
            _, _, stamp, must_send = self._pending
            if not must_send and time.monotonic() - stamp > self.max_age_s:
                self._pending = None
                self.stats.stale_dropped += 1
