"""GripperWorker (drivers/gripper_worker.py): Intera's blocking open/close off the loop's
thread. A stand-in gripper whose calls block on an Event shows what the worker does
while one is in flight."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest
from polling import wait_until

from grasprt.drivers.gripper_worker import GripperWorker

_names = itertools.count()


class BlockingGripper:
    """Records open/close; while `gate` is cleared, a call waits for it (as Intera's
    IO command waits for its ack)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)  # released as each call starts
        self.fail_with: Exception | None = None

    def _call(self, what: str) -> None:
        self.entered.release()
        assert self.gate.wait(5.0), "test never released the gripper"
        if self.fail_with is not None:
            err, self.fail_with = self.fail_with, None
            raise err
        self.calls.append(what)

    def open(self) -> None:
        self._call("open")

    def close(self) -> None:
        self._call("close")


def alive(name: str) -> bool:
    return any(t.name == f"{name}-worker" and t.is_alive() for t in threading.enumerate())


@pytest.fixture
def gripper() -> BlockingGripper:
    return BlockingGripper()


@pytest.fixture
def worker(gripper: BlockingGripper) -> Iterator[GripperWorker]:
    w = GripperWorker(gripper, f"test-gripper-{next(_names)}")
    yield w
    gripper.gate.set()
    w.stop()


def test_request_returns_at_once_while_the_gripper_blocks(
    worker: GripperWorker, gripper: BlockingGripper
) -> None:
    gripper.gate.clear()
    t0 = time.monotonic()
    worker.request(True)
    assert time.monotonic() - t0 < 0.05
    assert gripper.entered.acquire(timeout=3.0)  # the worker is inside close()
    assert worker.pending
    gripper.gate.set()
    assert wait_until(lambda: not worker.pending)
    assert gripper.calls == ["close"]


def test_newest_request_wins_and_overtaken_ones_are_dropped(
    worker: GripperWorker, gripper: BlockingGripper
) -> None:
    gripper.gate.clear()
    worker.request(True)
    assert gripper.entered.acquire(timeout=3.0)
    for closed in (False, True, False, True, False):  # all while close() is stuck
        worker.request(closed)
    gripper.gate.set()
    assert wait_until(lambda: not worker.pending)
    time.sleep(0.05)
    assert gripper.calls == ["close", "open"]  # only the newest, once


def test_request_overtaken_back_to_what_is_done_makes_no_call(
    worker: GripperWorker, gripper: BlockingGripper
) -> None:
    gripper.gate.clear()
    worker.request(True)
    assert gripper.entered.acquire(timeout=3.0)
    worker.request(False)
    worker.request(True)  # back to the close in flight: the open is dropped
    gripper.gate.set()
    assert wait_until(lambda: not worker.pending)
    time.sleep(0.05)
    assert gripper.calls == ["close"]
    worker.request(True)  # what was last carried out: nothing to do
    time.sleep(0.05)
    assert gripper.calls == ["close"] and not worker.pending


def test_nothing_is_called_before_a_request(
    worker: GripperWorker, gripper: BlockingGripper
) -> None:
    time.sleep(0.05)
    assert gripper.calls == [] and not worker.pending and worker.error is None


def test_an_error_is_kept_and_later_requests_still_run(
    worker: GripperWorker, gripper: BlockingGripper
) -> None:
    gripper.fail_with = OSError("Timed out waiting for command acknowledgement")
    worker.request(True)
    assert wait_until(lambda: worker.error is not None)
    assert worker.error == "OSError: Timed out waiting for command acknowledgement"
    assert not worker.pending  # a failed call counts as carried out: not retried
    worker.request(False)
    assert wait_until(lambda: gripper.calls == ["open"])
    assert worker.error == "OSError: Timed out waiting for command acknowledgement"  # kept


def test_stop_joins_the_thread_and_later_requests_are_not_carried_out(
    gripper: BlockingGripper,
) -> None:
    name = f"test-gripper-{next(_names)}"
    w = GripperWorker(gripper, name)
    assert alive(name)
    w.request(True)
    assert wait_until(lambda: gripper.calls == ["close"])
    w.stop()
    assert not alive(name)
    w.request(False)
    time.sleep(0.05)
    assert gripper.calls == ["close"]


def test_stop_with_a_call_stuck_returns_after_its_timeout(gripper: BlockingGripper) -> None:
    name = f"test-gripper-{next(_names)}"
    w = GripperWorker(gripper, name)
    gripper.gate.clear()
    w.request(True)
    assert gripper.entered.acquire(timeout=3.0)
    w.request(False)  # waiting behind the stuck close
    t0 = time.monotonic()
    w.stop(timeout_s=0.1)
    assert 0.09 <= time.monotonic() - t0 < 1.0  # does not hang on a stuck SDK call
    assert alive(name)
    gripper.gate.set()
    assert wait_until(lambda: not alive(name))
    assert gripper.calls == ["close"]  # stopped: the open waiting behind it is dropped
