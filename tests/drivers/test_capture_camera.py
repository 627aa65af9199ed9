"""The capture-camera base, through small real subclasses that make synthetic frames.

``Synthetic`` pulls: frame i is a flat image of value i with device stamp i, and with a
gate each grab waits until the test lets one more frame through, so what the capture
thread has produced is known exactly. ``Pushed`` is a push source: the test thread plays
the callback and hands frames to ``_deliver``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from grasprt.calibration.camera_info import save_camera_info
from grasprt.drivers.capture_camera import CaptureCamera, CaptureSettings, EndOfStream
from grasprt.errors import DriverError
from grasprt.types import Camera, Frame, Intrinsics

W, H = 32, 24
OWN = Intrinsics(W, H, 30.0, 30.0, 16.0, 12.0)


def synthetic_frame(i: int) -> Frame:
    # seq -1: the base must number frames itself.
    return Frame(np.full((H, W, 3), i, np.uint8), float(i), -1, device_stamp=float(i))


class Synthetic(CaptureCamera):
    def __init__(
        self,
        settings: CaptureSettings | None = None,
        *,
        frames: int | None = None,
        gated: bool = False,
        own: Intrinsics | None = None,
        fail: str | None = None,
        pause_after_first_s: float = 0.0,
    ) -> None:
        super().__init__((settings or CaptureSettings()).or_defaults(name="synthetic"))
        self.frames = frames  # None: endless
        self.gate = threading.Semaphore(0) if gated else None
        self.own = own
        self.fail = fail
        self.pause_after_first_s = pause_after_first_s
        self.opens = 0
        self.closes = 0
        self.grab_thread: threading.Thread | None = None
        self._next = 0

    def release(self, count: int) -> None:
        assert self.gate is not None
        for _ in range(count):
            self.gate.release()

    def _open(self) -> Intrinsics | None:
        self.opens += 1
        self._next = 0
        return self.own

    def _grab(self) -> Frame | None:
        self.grab_thread = threading.current_thread()
        if self.fail is not None:
            raise DriverError(self.fail)
        # Short waits, as a real driver's read timeout: disconnect() is never held up.
        if self.gate is not None and not self.gate.acquire(timeout=0.05):
            return None
        if (
            self._next > 0
            and self.pause_after_first_s
            and not self._sleep(self.pause_after_first_s)
        ):
            return None
        if self.frames is not None and self._next >= self.frames:
            raise EndOfStream("played out")
        self._next += 1
        return synthetic_frame(self._next - 1)

    def _close(self) -> None:
        self.closes += 1


class Pushed(CaptureCamera):
    push = True

    def __init__(self, settings: CaptureSettings | None = None) -> None:
        super().__init__((settings or CaptureSettings()).or_defaults(name="pushed"))
        self.subscribed = False

    def _open(self) -> Intrinsics | None:
        self.subscribed = True
        return OWN

    def _close(self) -> None:
        self.subscribed = False


@pytest.fixture
def cameras() -> Iterator[list[CaptureCamera]]:
    made: list[CaptureCamera] = []
    yield made
    for cam in made:
        cam.disconnect()


def connected(made: list[CaptureCamera], cam: Synthetic) -> Synthetic:
    made.append(cam)
    cam.connect()
    return cam


def step_to_end(cam: Synthetic) -> list[Frame]:
    """The held frame and every later one, let through one at a time (none skipped)."""
    held = cam.latest()
    assert held is not None
    seen = [held]
    while True:
        cam.release(1)
        frame = cam.wait_for_frame(seen[-1].seq)
        if frame is None:
            return seen
        assert frame.seq > seen[-1].seq, "wait_for_frame gave a frame it was past"
        seen.append(frame)


def test_only_the_newest_frame_is_kept_and_unread_ones_are_drops(cameras: list) -> None:
    cam = Synthetic(gated=True)
    assert isinstance(cam, Camera)
    cam.release(1)  # connect() waits for (and reads) this first frame
    connected(cameras, cam)
    cam.release(5)
    assert cam.wait_for_frames(6)
    newest = cam.latest()
    assert newest is not None and newest.seq == 6 and newest.device_stamp == 5.0
    assert int(newest.image[0, 0, 0]) == 5
    assert (cam.stats.frames, cam.stats.drops) == (6, 4)  # frames 1..4 replaced unread
    cam.release(1)
    assert cam.wait_for_frames(7)
    assert cam.stats.drops == 4  # frame 6 had been read before frame 7 came


def test_wait_for_frame_blocks_for_a_newer_one(cameras: list) -> None:
    cam = Synthetic(gated=True)
    cam.release(1)
    connected(cameras, cam)
    first = cam.latest()
    assert first is not None and first.seq == 1
    assert cam.wait_for_frame(-1, timeout_s=0.0) is first
    assert cam.wait_for_frame(first.seq, timeout_s=0.1) is None  # the gate is shut
    assert not cam.wait_for_frames(2, timeout_s=0.1)
    cam.release(1)
    second = cam.wait_for_frame(first.seq)
    assert second is not None and second.seq == 2 and second.device_stamp == 1.0
    assert cam.wait_for_frames(2, timeout_s=0.0)


def test_settle_frames_are_dropped_after_each_connect(cameras: list) -> None:
    cam = Synthetic(CaptureSettings(settle_frames=3), frames=10, gated=True)
    cam.release(4)  # three to settle, then the first frame connect() waits for
    seen = step_to_end(connected(cameras, cam))
    assert [f.device_stamp for f in seen] == [float(i) for i in range(3, 10)]
    assert [f.seq for f in seen] == list(range(1, 8))
    assert cam.stats.frames == 7
    cam.disconnect()
    cam.release(4)
    cam.connect()
    again = step_to_end(cam)
    assert again[0].device_stamp == 3.0  # settled again, from the reopened start
    assert again[0].seq == 8  # numbers keep rising across reconnects
    assert cam.opens == 2


def test_end_of_stream_ends_the_capture(cameras: list) -> None:
    cam = Synthetic(frames=3, gated=True)
    cam.release(1)
    seen = step_to_end(connected(cameras, cam))
    assert [f.seq for f in seen] == [1, 2, 3]
    assert cam.stats.ended and cam.stats.errors == 0
    assert cam.grab_thread is not None
    cam.grab_thread.join(5.0)
    assert not cam.grab_thread.is_alive()
    last = cam.latest()
    assert last is not None and last.seq == 3  # the last frame stays readable


def test_a_source_with_no_frames_is_one_clear_error() -> None:
    cam = Synthetic(frames=0)
    with pytest.raises(DriverError) as err:
        cam.connect()
    assert str(err.value) == "synthetic: the source has no frames"
    assert cam.closes == 1  # the failed connect closed what it opened


def test_no_first_frame_says_how_long_and_the_last_error() -> None:
    stalled = Synthetic(CaptureSettings(first_frame_timeout_s=0.2), gated=True)
    with pytest.raises(DriverError) as err:
        stalled.connect()
    assert str(err.value) == "synthetic: no frame came within 0.2 s"
    failing = Synthetic(CaptureSettings(first_frame_timeout_s=0.2), fail="sensor gone\ndetail")
    with pytest.raises(DriverError) as err:
        failing.connect()
    assert str(err.value) == "synthetic: no frame came within 0.2 s (last error: sensor gone)"
    assert failing.stats.errors >= 1 and failing.closes == 1


def test_calibration_for_another_size_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cam.yaml"
    save_camera_info(path, Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0))
    cam = Synthetic(CaptureSettings(calibration=path), own=OWN)
    with pytest.raises(DriverError) as err:
        cam.connect()
    assert str(err.value) == f"synthetic: calibration {path} is for 640x480 but the stream is 32x24"
    assert cam.closes == 1
    assert cam.grab_thread is not None and not cam.grab_thread.is_alive()


def test_calibration_overrides_the_stream_intrinsics(tmp_path: Path, cameras: list) -> None:
    calibrated = Intrinsics(W, H, 31.0, 32.0, 15.5, 12.5, (0.1, 0.0, 0.0, 0.0, 0.0))
    save_camera_info(tmp_path / "cam.yaml", calibrated)
    cam = connected(cameras, Synthetic(CaptureSettings(calibration=tmp_path / "cam.yaml"), own=OWN))
    assert cam.intrinsics == calibrated
    assert connected(cameras, Synthetic(own=OWN)).intrinsics == OWN
    assert connected(cameras, Synthetic()).intrinsics is None


def test_disconnect_interrupts_a_pacing_wait_and_wakes_waiters(cameras: list) -> None:
    cam = connected(cameras, Synthetic(pause_after_first_s=600.0))
    first = cam.latest()
    assert first is not None
    woke: list[Frame | None] = []
    waiter = threading.Thread(target=lambda: woke.append(cam.wait_for_frame(first.seq, 600.0)))
    waiter.start()
    cam.disconnect()  # gives up on a thread still busy after 5 s, and then leaves it open
    assert cam.grab_thread is not None and not cam.grab_thread.is_alive()
    assert cam.closes == 1
    waiter.join(5.0)
    assert not waiter.is_alive() and woke == [None]


def test_a_push_source_settles_numbers_and_ignores_frames_when_not_capturing() -> None:
    cam = Pushed(CaptureSettings(settle_frames=2))
    assert not cam._deliver(synthetic_frame(0))  # before connect(): ignored
    connecting = threading.Thread(target=cam.connect)
    connecting.start()
    taken: list[int] = []
    # The test thread plays the subscriber's callback until connect() has its first frame.
    for i in itertools.count(1):
        if cam._deliver(synthetic_frame(i % 256)):
            taken.append(i % 256)
        if cam.stats.frames or not connecting.is_alive():
            break
    connecting.join(5.0)
    assert not connecting.is_alive() and cam.subscribed
    assert len(taken) == 3  # two settle frames, then the one held
    newest = cam.latest()
    assert newest is not None and newest.seq == 1 and newest.device_stamp == float(taken[-1])
    assert not any(t.name == "capture:pushed" for t in threading.enumerate())
    assert cam.intrinsics == OWN
    assert cam._deliver(synthetic_frame(200))
    assert cam.wait_for_frames(2, timeout_s=0.0) and cam.stats.drops == 0
    cam.disconnect()
    assert not cam.subscribed
    assert not cam._deliver(synthetic_frame(201))
    assert cam.stats.frames == 2


def test_a_pull_camera_without_grab_is_refused() -> None:
    class NoGrab(CaptureCamera):
        def _open(self) -> Intrinsics | None:
            return None

        def _close(self) -> None:
            pass

    with pytest.raises(TypeError, match="NoGrab pulls frames but defines no _grab"):
        NoGrab(CaptureSettings())


def test_settings_defaults_fill_only_what_is_unset() -> None:
    settings = CaptureSettings(width=1280, settle_frames=0).or_defaults(
        width=640, height=480, settle_frames=15, name="cam"
    )
    assert (settings.width, settings.height, settings.settle_frames, settings.name) == (
        1280,
        480,
        0,
        "cam",
    )
    with pytest.raises(TypeError, match="no field colour"):
        CaptureSettings().or_defaults(colour="red")
