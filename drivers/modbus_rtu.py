"""A Modbus RTU master on a serial port: framing, CRC-16, silence, timeouts, retries.

Only the two function codes a Robotiq gripper needs: 0x04 (read input registers) and
0x10 (write multiple registers). Frames are ``slave | function | data | crc_lo crc_hi``;
the CRC is CRC-16/MODBUS (reflected poly 0xA001, init 0xFFFF), sent low byte first.

A garbled or missing answer is retried (after the line has gone quiet, so the next
request starts on a clean frame boundary); a device that answers with an exception
(function | 0x80) is not retried, since it heard us and said no.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grasprt.errors import DriverError

READ_INPUT_REGISTERS = 0x04
WRITE_MULTIPLE_REGISTERS = 0x10
EXCEPTION_FLAG = 0x80

EXCEPTION_NAMES: dict[int, str] = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "slave device failure",
    0x05: "acknowledge",
    0x06: "slave device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target failed to respond",
}


class ModbusError(DriverError):
    """A Modbus exchange that failed after its retries."""


class ModbusPortError(ModbusError):
    """The serial port could not be opened, or vanished (USB adapter unplugged)."""


class ModbusTimeout(ModbusError):
    """No complete answer within the response timeout."""


class ModbusFrameError(ModbusError):
    """An answer with a bad CRC, from the wrong slave, or of the wrong shape."""


class ModbusExceptionResponse(ModbusError):
    """The slave answered with an exception code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def crc_ok(frame: bytes) -> bool:
    # Running the CRC over a frame including its own (little-endian) CRC gives zero.
    return len(frame) >= 4 and crc16(frame) == 0


def _check_register(name: str, value: int, high: int = 0xFFFF) -> None:
    if not 0 <= value <= high:
        raise ValueError(f"Modbus {name} {value} outside 0..{high}")


def read_input_registers_request(slave: int, address: int, count: int) -> bytes:
    _check_register("slave id", slave, 247)
    _check_register("address", address)
    if not 1 <= count <= 125:
        raise ValueError(f"Modbus register count {count} outside 1..125")
    return with_crc(bytes((slave, READ_INPUT_REGISTERS, address >> 8, address & 0xFF, 0, count)))


def write_multiple_registers_request(slave: int, address: int, values: Sequence[int]) -> bytes:
    _check_register("slave id", slave, 247)
    _check_register("address", address)
    if not 1 <= len(values) <= 123:
        raise ValueError(f"Modbus register count {len(values)} outside 1..123")
    body = bytearray(
        (slave, WRITE_MULTIPLE_REGISTERS, address >> 8, address & 0xFF, 0, len(values))
    )
    body.append(2 * len(values))
    for v in values:
        _check_register("register value", v)
        body += bytes((v >> 8, v & 0xFF))
    return with_crc(bytes(body))


def silence_s(baud: int) -> float:
    """The 3.5-character gap that ends an RTU frame (11 bits a character on 8N1 + parity
    slot); the spec fixes it at 1.75 ms above 19200 baud."""
    return 1.75e-3 if baud > 19200 else 3.5 * 11.0 / baud


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    bad_frames: int = 0
    exceptions: int = 0


SerialFactory = Callable[..., Any]


def _pyserial_factory(**kwargs: Any) -> Any:
    import serial  # only here: pyserial is the optional 'serial' extra

    return serial.Serial(**kwargs)


class ModbusRtuMaster:
    """One Modbus RTU bus on one serial port. Not thread-safe: give it one owner thread."""

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        response_timeout_s: float = 0.1,
        retries: int = 2,
        serial_factory: SerialFactory | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.response_timeout_s = response_timeout_s
        self.retries = retries
        self.stats = LinkStats()
        self._factory = serial_factory or _pyserial_factory
        self._serial: Any = None
        self._silence = silence_s(baud)
        self._last_activity = 0.0

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        if self._serial is not None:
            return
        try:
            import serial
        except ImportError:
            raise ModbusPortError(
                "pyserial not found: install it with pip install 'grasprt[serial]'"
            ) from None
        try:
            self._serial = self._factory(
                port=self.port,
                baudrate=self.baud,
                bytesize=8,
                parity="N",
                stopbits=1,
                timeout=self.response_timeout_s,
                write_timeout=max(self.response_timeout_s, 0.05),
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            raise ModbusPortError(
                f"cannot open serial port {self.port}: {err}; check the cable and that "
                "your user is in the dialout group"
            ) from None
        self._last_activity = time.monotonic()

    def close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            # Closing a vanished port can fail; it is gone either way.
            with contextlib.suppress(Exception):
                ser.close()

    def read_input_registers(self, slave: int, address: int, count: int) -> list[int]:
        request = read_input_registers_request(slave, address, count)
        data = self._transact(request)
        if len(data) != 1 + 2 * count or data[0] != 2 * count:
            raise ModbusFrameError(
                f"Modbus slave {slave} on {self.port}: read answered {len(data)} data bytes, "
                f"expected {1 + 2 * count}"
            )
        return [(data[1 + 2 * i] << 8) | data[2 + 2 * i] for i in range(count)]

    def write_multiple_registers(self, slave: int, address: int, values: Sequence[int]) -> None:
        request = write_multiple_registers_request(slave, address, values)
        data = self._transact(request)
        echo = bytes((address >> 8, address & 0xFF, 0, len(values)))
        if data != echo:
            raise ModbusFrameError(
                f"Modbus slave {slave} on {self.port}: write echo {data.hex()} "
                f"does not match request {echo.hex()}"
            )

    # -- the exchange -------------------------------------------------------------

    def _transact(self, request: bytes) -> bytes:
        """Send ``request``; return the answer's data (between function code and CRC)."""
        if self._serial is None:
            raise ModbusPortError(f"serial port {self.port} is not open")
        slave, function = request[0], request[1]
        last: ModbusError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                self._drain()
            self.stats.requests += 1
            try:
                self._send(request)
                return self._receive(slave, function)
            except ModbusTimeout as err:
                self.stats.timeouts += 1
                last = err
            except ModbusFrameError as err:
                self.stats.bad_frames += 1
                last = err
        assert last is not None
        raise type(last)(f"{last} (after {self.retries + 1} tries)")

    def _send(self, request: bytes) -> None:
        wait = self._last_activity + self._silence - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            self._serial.write(request)
        except Exception as err:
            self.close()
            raise ModbusPortError(f"serial port {self.port} write failed: {err}") from None
        self._last_activity = time.monotonic()

    def _read(self, n: int) -> bytes:
        try:
            data = bytes(self._serial.read(n))
        except Exception as err:
            self.close()
            raise ModbusPortError(f"serial port {self.port} read failed: {err}") from None
        if data:
            self._last_activity = time.monotonic()
        return data

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._read(n)
        if len(data) < n:
            raise ModbusTimeout(
                f"Modbus on {self.port}: {what}: got {len(data)} of {n} bytes within "
                f"{self.response_timeout_s:.3f} s"
            )
        return data

    def _receive(self, slave: int, function: int) -> bytes:
        head = self._read_exact(2, f"no answer from slave {slave}")
        if head[0] != slave or head[1] & 0x7F != function:
            raise ModbusFrameError(
                f"Modbus on {self.port}: answer starts {head.hex()}, expected slave {slave} "
                f"function {function:#04x}"
            )
        if head[1] & EXCEPTION_FLAG:
            frame = head + self._read_exact(3, "exception answer cut short")
            if not crc_ok(frame):
                raise ModbusFrameError(f"Modbus on {self.port}: bad CRC on {frame.hex()}")
            code = frame[2]
            self.stats.exceptions += 1
            raise ModbusExceptionResponse(
                f"Modbus slave {slave} on {self.port} refused function {function:#04x}: "
                f"exception {code:#04x} ({EXCEPTION_NAMES.get(code, 'unknown')})",
                code,
            )
        if function == READ_INPUT_REGISTERS:
            count = self._read_exact(1, "answer cut short")
            frame = head + count + self._read_exact(count[0] + 2, "answer cut short")
            data = frame[2:-2]
        else:
            frame = head + self._read_exact(6, "answer cut short")
            data = frame[2:-2]
        if not crc_ok(frame):
            raise ModbusFrameError(f"Modbus on {self.port}: bad CRC on {frame.hex()}")
        return data

    def _drain(self) -> None:
        """Wait for the line to go quiet, then drop whatever is left of a broken answer."""
        if self._serial is None:
            return
        try:
            for _ in range(50):
                time.sleep(self._silence)
                waiting = self._serial.in_waiting
                if not waiting:
                    break
                self._serial.read(waiting)
            self._serial.reset_input_buffer()
        except Exception as err:
            self.close()
            raise ModbusPortError(f"serial port {self.port} failed: {err}") from None
        self._last_activity = time.monotonic()
