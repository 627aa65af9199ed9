"""The command gate, with a small recording robot (our own Robot interface, not a mock of
an external system) and real threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from grasprt.runtime.command_gate import CommandGate
from grasprt.types import JointCommand, RobotState

JOINTS = tuple(f"j{i}" for i in range(7))


class RecordingRobot:
    """Keeps every call in order; can be told to fail or to block inside command()."""

    name = "recording"
    joint_names = JOINTS

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.fail_command: Exception | None = None
        self.fail_hold: Exception | None = None
        self.block_command: threading.Event | None = None
        self.in_command = threading.Event()

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def read_state(self) -> RobotState:
        return RobotState(q=np.zeros(7), gripper=0.0, stamp=0.0)

    def command(self, cmd: JointCommand) -> None:
        self.in_command.set()
        if self.block_command is not None:
            self.block_command.wait(10.0)
        if self.fail_command is not None:
            raise self.fail_command
        with self.lock:
            self.calls.append(("command", cmd))

    def hold(self) -> None:
        with self.lock:
            self.calls.append(("hold", None))
        if self.fail_hold is not None:
            raise self.fail_hold

    def kinds(self) -> list[str]:
        with self.lock:
            return [k for k, _ in self.calls]


def cmd(x: float = 0.0) -> JointCommand:
    return JointCommand(q=np.full(7, x), gripper_closed=False, stamp=0.0)


def test_send_passes_commands_while_open() -> None:
    robot = RecordingRobot()
    gate = CommandGate(robot)
    assert gate.send(cmd(0.1)) and gate.send(cmd(0.2))
    assert gate.sent == 2 and not gate.latched and gate.reason is None
    sent = [c.q[0] for k, c in robot.calls if k == "command"]
    assert sent == [0.1, 0.2]


def test_latch_holds_once_and_refuses_every_later_command() -> None:
    robot = RecordingRobot()
    gate = CommandGate(robot)
    gate.send(cmd())
    gate.latch("first reason")
    gate.latch("second reason")
    assert not gate.send(cmd(1.0))
    assert not gate.send(cmd(2.0))
    assert robot.kinds() == ["command", "hold"]
    assert gate.latched and gate.reason == "first reason"
    assert gate.refused_after_latch == 2 and gate.sent == 1


def test_hold_holds_without_latching() -> None:
    robot = RecordingRobot()
    gate = CommandGate(robot)
    gate.hold("stale frame")
    assert not gate.latched and gate.holds == 1 and gate.last_hold_reason == "stale frame"
    assert gate.send(cmd())
    assert robot.kinds() == ["hold", "command"]


def test_a_failing_command_latches_and_holds() -> None:
    robot = RecordingRobot()
    robot.fail_command = ConnectionError("link down\nwith detail")
    gate = CommandGate(robot)
    assert not gate.send(cmd())
    assert gate.latched
    assert gate.reason == "robot command failed: ConnectionError: link down"
    assert robot.kinds() == ["hold"]
    assert gate.sent == 0


def test_a_failing_hold_latches_and_tries_to_hold_again() -> None:
    robot = RecordingRobot()
    robot.fail_hold = RuntimeError("driver gone")
    gate = CommandGate(robot)
    gate.hold("stale state")
    assert gate.latched and gate.reason == "robot hold failed: RuntimeError: driver gone"
    assert robot.kinds() == ["hold", "hold"]
    assert gate.hold_error == "RuntimeError: driver gone"
    assert not gate.send(cmd())


def test_a_latch_whose_hold_fails_does_not_raise() -> None:
    robot = RecordingRobot()
    robot.fail_hold = RuntimeError("no")
    gate = CommandGate(robot)
    gate.latch("watchdog")  # called from a watchdog thread: must never raise
    assert gate.latched and gate.reason == "watchdog" and gate.hold_error == "RuntimeError: no"


@pytest.mark.parametrize("q", [np.array([0.0] * 6 + [np.nan]), np.zeros(6), np.full(7, np.inf)])
def test_a_bad_command_is_refused_and_latches(q: np.ndarray) -> None:
    robot = RecordingRobot()
    gate = CommandGate(robot)
    assert not gate.send(JointCommand(q=q, gripper_closed=False, stamp=0.0))
    assert gate.latched and gate.reason.startswith("refused a bad command")
    assert robot.kinds() == ["hold"]


def test_a_latch_during_a_stuck_command_does_not_wait_for_it() -> None:
    robot = RecordingRobot()
    release = threading.Event()
    robot.block_command = release
    gate = CommandGate(robot)
    results: list[bool] = []
    sender = threading.Thread(target=lambda: results.append(gate.send(cmd(0.5))))
    sender.start()
    assert robot.in_command.wait(5.0)
    # The loop thread is stuck inside the driver; the watchdog latches from here.
    gate.latch("loop heartbeat lost")
    assert robot.kinds() == ["hold"]  # the hold went out while the command was stuck
    release.set()
    sender.join(5.0)
    assert not sender.is_alive()
    # The stuck command landed after the hold, so the gate held once more behind it.
    assert robot.kinds() == ["hold", "command", "hold"]
    assert results == [False] and gate.sent == 0 and gate.raced_latch == 1


def test_concurrent_latch_leaves_hold_as_the_robots_last_word() -> None:
    for _ in range(20):
        robot = RecordingRobot()
        gate = CommandGate(robot)
        go = threading.Event()
        sends: list[bool] = []

        def loop(
            gate: CommandGate = gate, sends: list[bool] = sends, go: threading.Event = go
        ) -> None:
            go.wait()
            for i in range(300):
                sends.append(gate.send(cmd(i)))

        threads = [threading.Thread(target=loop)]
        threads.append(threading.Thread(target=lambda g=gate, e=go: (e.wait(), g.latch("trip"))))
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(10.0)
        kinds = robot.kinds()
        assert kinds[-1] == "hold"
        assert len(sends) == 300 and gate.sent == sends.count(True)
        # Every refusal is either a send after the latch or one that raced it.
        assert sends.count(False) == gate.refused_after_latch + gate.raced_latch
        assert gate.robot_holds == kinds.count("hold") == 1 + gate.raced_latch
        assert gate.reason == "trip"
