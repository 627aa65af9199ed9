"""The Robotiq 2F driver against an emulated gripper on a real pty."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from serial_emulators import Pty, RobotiqEmulator, point_link, wait_for

from grasprt.drivers.arm_with_gripper import ArmWithGripper
from grasprt.drivers.robotiq import RobotiqGripper, RobotiqStatus, encode_request
from grasprt.errors import DriverError
from grasprt.types import Gripper, JointCommand, Robot, RobotState


@dataclass
class Rig:
    pty: Pty
    emu: RobotiqEmulator
    link: Path
    gripper: RobotiqGripper

    def replace_pty(self, **emu_kwargs: object) -> None:
        """Unplug the adapter (close the pty) and plug a new one in (new pty, link moved)."""
        self.emu.stop()
        self.pty.close()
        self.pty = Pty()
        self.emu = RobotiqEmulator(self.pty.master, **emu_kwargs)  # type: ignore[arg-type]
        self.emu.start()
        point_link(self.link, self.pty.name)


def make_gripper(link: Path, **kwargs: object) -> RobotiqGripper:
    options: dict[str, object] = {
        "poll_period_s": 0.005,
        "response_timeout_s": 0.05,
        "retries": 1,
        "reconnect_backoff_s": 0.01,
        "reconnect_backoff_max_s": 0.05,
        "stale_fault_s": 5.0,
    }
    options.update(kwargs)
    return RobotiqGripper(str(link), **options)  # type: ignore[arg-type]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    pty = Pty()
    emu = RobotiqEmulator(pty.master)
    emu.start()
    link = tmp_path / "ttyROBOTIQ"
    point_link(link, pty.name)
    r = Rig(pty, emu, link, make_gripper(link))
    yield r
    r.gripper.disconnect()
    r.emu.stop()
    r.pty.close()


def test_register_encoding_follows_the_manual_byte_layout() -> None:
    # The manual's "close at full speed and force" frame carries 09 00 | 00 FF | FF FF.
    assert encode_request(True, True, 255, 255, 255) == [0x0900, 0x00FF, 0xFFFF]
    assert encode_request(False, False, 0, 0, 0) == [0, 0, 0]
    status = RobotiqStatus.from_registers([0xF900, 0x0AFF, 0xE312])
    assert (status.gACT, status.gGTO, status.gSTA, status.gOBJ) == (1, 1, 3, 3)
    assert (status.gFLT, status.gPR, status.gPO, status.gCU) == (0x0A, 0xFF, 0xE3, 0x12)
    assert status.active
    with pytest.raises(ValueError):
        encode_request(True, True, 256, 0, 0)


def test_connect_runs_the_activation_sequence(rig: Rig) -> None:
    rig.gripper.connect()
    # Reset (rACT=0) first, then activate (rACT=1), then wait for gSTA=3.
    assert rig.emu.writes[0][0] >> 8 == 0x00
    assert rig.emu.writes[1][0] >> 8 == 0x01
    status = rig.gripper.status()
    assert status is not None and status.active
    assert rig.emu.status_reads >= rig.emu.activation_polls
    assert isinstance(rig.gripper, Gripper)
    assert rig.gripper.fault() is None


def test_already_active_gripper_is_not_reactivated(tmp_path: Path) -> None:
    pty = Pty()
    emu = RobotiqEmulator(pty.master, activated=True)
    emu.start()
    gripper = make_gripper(Path(pty.name))
    try:
        gripper.connect()
        # Activation would sweep the fingers; an active gripper must be left alone.
        assert all(w[0] >> 8 != 0x00 for w in emu.writes)
    finally:
        gripper.disconnect()
        emu.stop()
        pty.close()


def test_activation_timeout_is_one_line_driver_error(tmp_path: Path) -> None:
    pty = Pty()
    emu = RobotiqEmulator(pty.master, activation_polls=10_000)
    emu.start()
    gripper = make_gripper(Path(pty.name), activation_timeout_s=0.2)
    try:
        with pytest.raises(DriverError, match="did not finish activating") as info:
            gripper.connect()
        assert "\n" not in str(info.value)
    finally:
        gripper.disconnect()
        emu.stop()
        pty.close()


def test_absent_gripper_is_driver_error_naming_power_and_wiring(tmp_path: Path) -> None:
    pty = Pty()
    emu = RobotiqEmulator(pty.master, slave_id=3)  # answers another id: ours is silent
    emu.start()
    gripper = make_gripper(Path(pty.name))
    try:
        with pytest.raises(DriverError, match="24 V supply") as info:
            gripper.connect()
        assert "\n" not in str(info.value)
    finally:
        emu.stop()
        pty.close()


def test_set_closed_moves_fingers_and_position_follows(rig: Rig) -> None:
    g = rig.gripper
    g.connect()
    assert g.position() == pytest.approx(0.0)
    g.set_closed(True)
    wait_for(lambda: g.position() == 1.0, what="fingers closed")
    assert rig.emu.rPR == 255 and rig.emu.rGTO == 1
    assert (rig.emu.rSP, rig.emu.rFR) == (g.speed, g.force)
    assert g.object_held() is False  # reached the request: nothing in the way
    g.set_closed(False)
    wait_for(lambda: g.position() == 0.0, what="fingers open")


def test_object_in_the_way_is_reported_as_held(rig: Rig) -> None:
    g = rig.gripper
    g.connect()
    rig.emu.object_at = 140
    g.set_closed(True)
    wait_for(lambda: g.object_held() is True, what="object detected")
    status = g.status()
    assert status is not None and status.gOBJ == 2
    assert g.position() == pytest.approx(140 / 255)


def test_latest_request_wins(rig: Rig) -> None:
    g = rig.gripper
    g.connect()
    with rig.emu.lock:  # hold the emulator so both requests queue up in the driver
        g.set_closed(True)
        g.set_closed(False)
        g.set_closed(True)
    wait_for(lambda: g.position() == 1.0, what="fingers closed")
    move_writes = [w for w in rig.emu.writes if w[0] >> 8 == 0x09]
    assert move_writes[-1][1] == 0x00FF
    assert len(move_writes) <= 2  # at most one stale request slipped in before the lock


def test_hold_drops_an_unsent_request(rig: Rig) -> None:
    g = rig.gripper
    g.connect()
    n_before = len(rig.emu.writes)
    with rig.emu.lock:
        g.set_closed(True)
        g.hold()
    polls = g.stats.polls
    wait_for(lambda: g.stats.polls > polls + 3, what="a few polls after the hold")
    # At most the request already on the wire when hold() came; nothing after it.
    assert len(rig.emu.writes) - n_before <= 1


def test_garbled_answers_are_recovered_without_reconnect(rig: Rig) -> None:
    g = rig.gripper
    g.connect()
    with rig.emu.lock:
        rig.emu.garble_next = 1
    polls = g.stats.polls
    wait_for(lambda: g.stats.polls > polls + 2, what="polls after the garbled answer")
    assert g.stats.link_errors == 0
    assert g.fault() is None


def test_paused_gripper_is_reconnected_and_counted(rig: Rig) -> None:
    g = make_gripper(rig.link, stale_fault_s=0.2)
    rig.gripper = g
    g.connect()
    with rig.emu.lock:
        rig.emu.paused = True
    wait_for(lambda: g.stats.reconnect_attempts >= 2, what="reconnect attempts")
    wait_for(lambda: g.fault() is not None, what="a stale-status fault")
    assert "not answering" in (g.fault() or "")
    with rig.emu.lock:
        rig.emu.paused = False
    wait_for(lambda: g.stats.reconnects >= 1, what="reconnected")
    wait_for(lambda: g.fault() is None, what="fault cleared")
    g.set_closed(True)
    wait_for(lambda: g.position() == 1.0, what="commands flow again")


def test_port_replaced_by_a_new_pty_is_reconnected(rig: Rig) -> None:
    g = rig.gripper
    g.connect()
    g.set_closed(True)
    wait_for(lambda: g.position() == 1.0, what="closed on the first pty")
    # Same gripper (still powered and active), new USB adapter node.
    rig.replace_pty(activated=True, position=255)
    wait_for(lambda: g.stats.reconnects >= 1, what="reconnect to the new pty")
    assert g.stats.link_errors >= 1
    # The newest request is sent again after a reconnect, then commands flow.
    wait_for(lambda: rig.emu.rPR == 255, what="request re-sent")
    g.set_closed(False)
    wait_for(lambda: g.position() == 0.0, what="opened through the new pty")
    assert g.fault() is None


def test_power_cycled_gripper_is_a_fault_not_silently_reactivated(rig: Rig) -> None:
    g = rig.gripper
    g.connect()
    rig.replace_pty(activated=False)
    wait_for(lambda: g.stats.reconnects >= 1, what="reconnect to the new pty")
    wait_for(lambda: g.fault() is not None, what="lost-activation fault")
    assert "lost its activation" in (g.fault() or "")
    g.set_closed(True)
    polls = g.stats.polls
    wait_for(lambda: g.stats.polls > polls + 3, what="polls")
    assert rig.emu.writes == []  # no activation, no move on a de-activated gripper


class _StandInArm:
    """A pure-Python arm for the wrapper test (no real arm here)."""

    name = "standin_arm"
    joint_names = ("j0",)

    def __init__(self) -> None:
        self.commands: list[JointCommand] = []
        self.holds = 0
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def read_state(self) -> RobotState:
        return RobotState(q=np.zeros(1), gripper=0.0, stamp=1.0, object_held=None)

    def command(self, cmd: JointCommand) -> None:
        self.commands.append(cmd)

    def hold(self) -> None:
        self.holds += 1


def test_arm_with_robotiq_routes_gripper_state_and_commands(rig: Rig) -> None:
    arm = _StandInArm()
    robot = ArmWithGripper(arm, rig.gripper)
    assert isinstance(robot, Robot)
    robot.connect()
    assert arm.connected
    robot.command(JointCommand(q=np.zeros(1), gripper_closed=True, stamp=0.0))
    assert len(arm.commands) == 1
    wait_for(lambda: robot.read_state().gripper == 1.0, what="closed via the wrapper")
    state = robot.read_state()
    assert state.object_held is False and state.fault is None
    robot.hold()
    assert arm.holds == 1
    rig.emu.power_cycle()
    rig.replace_pty(activated=False)
    wait_for(lambda: robot.read_state().fault is not None, what="gripper fault in state")
    robot.disconnect()
    assert not arm.connected


def test_missing_port_is_one_line_driver_error(tmp_path: Path) -> None:
    gripper = make_gripper(tmp_path / "ttyNOTHERE")
    with pytest.raises(DriverError, match="cannot open serial port") as info:
        gripper.connect()
    assert "\n" not in str(info.value)
