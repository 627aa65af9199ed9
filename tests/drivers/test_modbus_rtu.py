"""Modbus RTU framing and the master's error handling, through real ptys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serial_emulators import Pty, RobotiqEmulator, wait_for

from grasprt.drivers.modbus_rtu import (
    ModbusExceptionResponse,
    ModbusFrameError,
    ModbusPortError,
    ModbusRtuMaster,
    ModbusTimeout,
    crc16,
    crc_ok,
    read_input_registers_request,
    silence_s,
    with_crc,
    write_multiple_registers_request,
)
from grasprt.errors import DriverError


@pytest.fixture
def bus() -> Iterator[tuple[ModbusRtuMaster, RobotiqEmulator]]:
    pty = Pty()
    emu = RobotiqEmulator(pty.master, activated=True)
    emu.start()
    master = ModbusRtuMaster(pty.name, response_timeout_s=0.1, retries=2)
    master.open()
    yield master, emu
    master.close()
    emu.stop()
    pty.close()


# Example frames printed in Robotiq's 2F-85/140 manual (activation request, activation
# clear, close at full speed and force, status reads), CRC bytes included.
MANUAL_FRAMES = [
    "09 10 03 E8 00 03 06 00 00 00 00 00 00 73 30",
    "09 10 03 E8 00 03 06 01 00 00 00 00 00 72 E1",
    "09 10 03 E8 00 03 06 09 00 00 FF FF FF 42 29",
    "09 04 07 D0 00 03 B1 CE",
    "09 03 07 D0 00 01 85 CF",
]


@pytest.mark.parametrize("hex_frame", MANUAL_FRAMES)
def test_crc_matches_robotiq_manual_frames(hex_frame: str) -> None:
    frame = bytes.fromhex(hex_frame)
    assert with_crc(frame[:-2]) == frame
    assert crc_ok(frame)


def test_crc_known_modbus_vector_and_rejects_a_flipped_bit() -> None:
    # The Modbus spec's read-holding-registers example: 01 03 00 00 00 0A -> C5 CD.
    frame = with_crc(bytes.fromhex("01030000000A"))
    assert frame[-2:] == bytes.fromhex("C5CD")
    assert crc16(frame) == 0
    for i in range(len(frame)):
        for bit in range(8):
            broken = bytearray(frame)
            broken[i] ^= 1 << bit
            assert not crc_ok(bytes(broken))


def test_request_builders_match_the_manual() -> None:
    assert read_input_registers_request(9, 0x07D0, 3) == bytes.fromhex(MANUAL_FRAMES[3])
    assert write_multiple_registers_request(9, 0x03E8, [0x0900, 0x00FF, 0xFFFF]) == bytes.fromhex(
        MANUAL_FRAMES[2]
    )
    with pytest.raises(ValueError):
        write_multiple_registers_request(9, 0x03E8, [0x10000])
    with pytest.raises(ValueError):
        read_input_registers_request(9, 0x07D0, 0)


def test_silence_is_three_and_a_half_characters_or_the_fixed_high_baud_gap() -> None:
    assert silence_s(9600) == pytest.approx(3.5 * 11 / 9600)
    assert silence_s(115200) == pytest.approx(1.75e-3)


def test_write_then_read_round_trip_over_pty(bus: tuple[ModbusRtuMaster, RobotiqEmulator]) -> None:
    master, emu = bus
    master.write_multiple_registers(9, 0x03E8, [0x0900, 0x0080, 0xFF40])
    assert emu.writes[-1] == [0x0900, 0x0080, 0xFF40]
    regs = master.read_input_registers(9, 0x07D0, 3)
    assert len(regs) == 3
    assert regs[1] & 0xFF == 0x80  # gPR echoes the written rPR
    assert emu.bad_crc == 0
    assert master.stats.retries == 0


def test_garbled_answer_is_retried_and_recovered(
    bus: tuple[ModbusRtuMaster, RobotiqEmulator],
) -> None:
    master, emu = bus
    clean = master.read_input_registers(9, 0x07D0, 3)
    with emu.lock:
        emu.garble_next = 1
    assert master.read_input_registers(9, 0x07D0, 3)[1] == clean[1]
    assert master.stats.bad_frames == 1
    assert master.stats.retries == 1


def test_noise_before_an_answer_is_recovered(
    bus: tuple[ModbusRtuMaster, RobotiqEmulator],
) -> None:
    master, emu = bus
    with emu.lock:
        emu.noise_next = b"\x00\xff\x13"
    master.write_multiple_registers(9, 0x03E8, [0x0900, 0x0010, 0xFFFF])
    assert emu.writes[-1][1] == 0x0010
    assert master.stats.bad_frames >= 1


def test_always_garbled_raises_frame_error_after_retries(
    bus: tuple[ModbusRtuMaster, RobotiqEmulator],
) -> None:
    master, emu = bus
    with emu.lock:
        emu.garble_next = 10
    with pytest.raises(ModbusFrameError, match=r"bad CRC.*after 3 tries"):
        master.read_input_registers(9, 0x07D0, 3)
    assert master.stats.requests == 3


def test_silent_device_times_out_after_retries(
    bus: tuple[ModbusRtuMaster, RobotiqEmulator],
) -> None:
    master, emu = bus
    with emu.lock:
        emu.paused = True
    with pytest.raises(ModbusTimeout, match="no answer from slave 9"):
        master.read_input_registers(9, 0x07D0, 3)
    wait_for(lambda: emu.unanswered == 3, what="all three tries to reach the device")
    with emu.lock:
        emu.paused = False
    assert len(master.read_input_registers(9, 0x07D0, 3)) == 3


def test_request_to_another_slave_gets_no_answer(
    bus: tuple[ModbusRtuMaster, RobotiqEmulator],
) -> None:
    master, emu = bus
    with pytest.raises(ModbusTimeout):
        master.read_input_registers(5, 0x07D0, 3)
    assert emu.frames_ok == 0


def test_exception_answer_is_raised_without_retry(
    bus: tuple[ModbusRtuMaster, RobotiqEmulator],
) -> None:
    master, _ = bus
    with pytest.raises(ModbusExceptionResponse, match="illegal data address") as info:
        master.read_input_registers(9, 0x0100, 3)
    assert info.value.code == 0x02
    assert master.stats.retries == 0
    assert master.stats.exceptions == 1


def test_vanished_port_raises_port_error() -> None:
    pty = Pty()
    emu = RobotiqEmulator(pty.master, activated=True)
    emu.start()
    master = ModbusRtuMaster(pty.name, response_timeout_s=0.1, retries=1)
    master.open()
    emu.stop()
    pty.close()
    with pytest.raises(ModbusPortError):
        for _ in range(3):  # the first write can still land in the kernel buffer
            master.read_input_registers(9, 0x07D0, 3)
    assert not master.is_open


def test_missing_port_is_one_line_driver_error() -> None:
    master = ModbusRtuMaster("/dev/does-not-exist-grasprt")
    with pytest.raises(DriverError) as info:
        master.open()
    message = str(info.value)
    assert "/dev/does-not-exist-grasprt" in message
    assert "dialout" in message
    assert "\n" not in message
