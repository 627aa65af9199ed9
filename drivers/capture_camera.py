"""The base of every camera that captures on its own and keeps only its newest frame.

:class:`CaptureCamera` owns what such cameras share: the newest-frame holder
(:class:`~grasprt.drivers.newest_frame.NewestFrame`), ``latest()``, ``stats``,
``wait_for_frame()``/``wait_for_frames()``, ``intrinsics``, the settle frames dropped
after each (re)open, frame numbering, and the ``connect()``/``disconnect()`` skeleton:

* ``connect()``: load the calibration file (if any), open the source (``_open()``, which
  returns the stream's own intrinsics or None), let the calibration override them,
  start capturing, wait for the first frame, and refuse a calibration made for another
  image size: each failure is one DriverError line.
* ``disconnect()``: stop capturing, then ``_close()`` the source (not while a ``_grab()``
  is still stuck after 5 s: closing under it would free what it is using).

A subclass supplies small hooks, and its constructor takes ``(source, settings)`` with a
:class:`CaptureSettings`:

* ``_open() -> Intrinsics | None`` opens the source. A source whose own intrinsics are
  costly or may fail to convert can skip them when ``self.settings.calibration`` is set.
* ``_grab() -> Frame | None`` (pull sources) blocks for the next frame, up to a timeout
  of the driver's choosing, and returns it, or None when it has nothing this time;
  it raises :class:`EndOfStream` when the source is finished and any other exception
  for a failed read (counted, retried with a growing pause). It runs in the capture
  thread; a wait inside it (pacing, reconnect back-off) uses :meth:`CaptureCamera._sleep`
  so that ``disconnect()`` is never held up. The ``seq`` it puts in a frame is replaced:
  the base numbers frames, so numbers keep rising across reconnects.
* ``_close()`` releases the source; it may be called when nothing is open.

A subclass that reopens its source inside ``_grab()`` (a replugged USB camera) calls
``_restart_settle()`` so the frames right after it are dropped too.

A push source, whose frames arrive in another thread's callback (a ROS camera
subscribing to ``sensor_msgs/Image``), sets the class attribute ``push = True`` and
implements no ``_grab()``: then there is no capture thread, ``_open()`` subscribes,
``_close()`` unsubscribes, and the callback (one thread at a time) hands each frame to
:meth:`CaptureCamera._deliver`, which applies the same settling, numbering, newest-only
keeping and drop counting; frames delivered before ``connect()`` has started capturing
or after ``disconnect()`` are ignored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from grasprt.calibration.camera_info import load_camera_info
from grasprt.clock import MonotonicClock
from grasprt.drivers.newest_frame import CaptureStats, EndOfStream, NewestFrame
from grasprt.errors import DriverError
from grasprt.types import Clock, Frame, Intrinsics

__all__ = ["CaptureCamera", "CaptureSettings", "CaptureStats", "EndOfStream"]


@dataclass(frozen=True)
class CaptureSettings:
    """What every capture camera is told. None: the driver's default.

    ``width``/``height``/``fps`` are a request to a live device (a file plays at its
    own); ``loop`` and ``pace`` apply to files and recordings (``pace=False``: as fast
    as frames are taken); ``settle_frames`` are dropped after each (re)open;
    ``calibration`` is a camera_info YAML whose intrinsics override the stream's.
    ``clock`` stamps frames (default: a MonotonicClock).
    """

    name: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    loop: bool = False
    pace: bool = True
    settle_frames: int | None = None
    calibration: str | Path | None = None
    clock: Clock | None = None
    first_frame_timeout_s: float | None = None

    def or_defaults(self, **defaults: Any) -> CaptureSettings:
        """A copy in which each field named in ``defaults`` that is still None takes it."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(defaults) - known)
        if unknown:
            raise TypeError(f"CaptureSettings has no field {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})


class CaptureCamera(ABC):
    """A :class:`grasprt.types.Camera` whose frames are captured apart from the reader.

    ``settings`` should come through :meth:`CaptureSettings.or_defaults` with the
    subclass's defaults filled in; a missing name becomes the class name.
    """

    # True: frames come through _deliver() from a callback, and there is no thread.
    push: ClassVar[bool] = False
    # How long connect() waits for the first frame unless the settings say.
    default_first_frame_timeout_s: ClassVar[float] = 5.0

    def __init__(self, settings: CaptureSettings) -> None:
        if not self.push and type(self)._grab is CaptureCamera._grab:
            raise TypeError(f"{type(self).__name__} pulls frames but defines no _grab()")
        self.settings = settings
        self.name = settings.name or type(self).__name__
        self._clock: Clock = settings.clock or MonotonicClock()
        self._capture = NewestFrame(self.name, None if self.push else self._pull)
        self._intrinsics: Intrinsics | None = None
        self._seq = 0
        self._to_settle = 0
        self.reconnects = 0

    # -- hooks ---------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> Intrinsics | None:
        """Open the source; its own intrinsics, or None when it has none."""

    def _grab(self) -> Frame | None:
        """The next frame, None for nothing this time; EndOfStream when finished."""
        raise NotImplementedError

    @abstractmethod
    def _close(self) -> None:
        """Release the source (nothing may be open)."""

    def _no_first_frame(self, timeout_s: float) -> tuple[str, str]:
        """connect()'s reasons for no first frame: (the source ended, it stalled)."""
        return "the source has no frames", f"no frame came within {timeout_s:g} s"

    # -- settings ------------------------------------------------------------------

    @property
    def width(self) -> int | None:
        return self.settings.width

    @property
    def height(self) -> int | None:
        return self.settings.height

    @property
    def fps(self) -> float | None:
        return self.settings.fps

    @property
    def loop(self) -> bool:
        return self.settings.loop

    @property
    def pace(self) -> bool:
        return self.settings.pace

    @property
    def settle_frames(self) -> int:
        return self.settings.settle_frames or 0

    @property
    def first_frame_timeout_s(self) -> float:
        timeout = self.settings.first_frame_timeout_s
        return self.default_first_frame_timeout_s if timeout is None else timeout

    # -- Camera --------------------------------------------------------------------

    @property
    def intrinsics(self) -> Intrinsics | None:
        return self._intrinsics

    def latest(self) -> Frame | None:
        return self._capture.latest()

    def connect(self) -> None:
        """Open the source and wait for its first frame; DriverError (one line) if none."""
        if self._capture.running:
            return
        # Read before opening: a bad file then fails without a device left open.
        path = self.settings.calibration
        calibration = load_camera_info(path) if path else None
        self._restart_settle()
        own = self._open()
        self._intrinsics = calibration if calibration is not None else own
        first = self._first_frame()
        if calibration is not None:
            self._check_calibration_size(calibration, first)

    def disconnect(self) -> None:
        # Closing the source under a thread still inside _grab() would free what it uses.
        if self._capture.stop():
            self._close()

    # -- status --------------------------------------------------------------------

    @property
    def stats(self) -> CaptureStats:
        return self._capture.stats

    def wait_for_frame(self, after_seq: int = -1, timeout_s: float = 5.0) -> Frame | None:
        """Block for a frame newer than ``after_seq`` (tools and tests; the loop polls)."""
        return self._capture.wait_for_frame(after_seq, timeout_s)

    def wait_for_frames(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until ``count`` frames were delivered since creation; False on timeout."""
        return self._capture.wait_for_frames(count, timeout_s)

    # -- for subclasses ------------------------------------------------------------

    @property
    def _stamps_on_monotonic(self) -> bool:
        """Whether frame stamps share ``time.monotonic``'s clock (device stamps mean something)."""
        return isinstance(self._clock, MonotonicClock)

    def _sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds``; False (at once) if the camera is being disconnected."""
        return self._capture.sleep(seconds)

    def _restart_settle(self) -> None:
        """Drop the next ``settle_frames`` frames, as after connect()."""
        self._to_settle = self.settle_frames

    def _deliver(self, frame: Frame) -> bool:
        """A push source's callback: settle, number and hold ``frame`` as the newest.

        False when the camera is not capturing (before connect() starts it, after
        disconnect()) and the frame was ignored; True when it was taken, held or settled.
        """
        if not self._capture.running:
            return False
        admitted = self._admit(frame)
        return admitted is None or self._capture.put(admitted)

    # -- inside --------------------------------------------------------------------

    def _pull(self) -> Frame | None:
        return self._admit(self._grab())

    def _admit(self, frame: Frame | None) -> Frame | None:
        if frame is None:
            return None
        if self._to_settle > 0:
            self._to_settle -= 1
            return None
        self._seq += 1
        return replace(frame, seq=self._seq)

    def _first_frame(self) -> Frame:
        timeout_s = self.first_frame_timeout_s
        self._capture.clear()
        self._capture.start()
        first = self._capture.wait_for_frame(timeout_s=timeout_s)
        if first is not None:
            return first
        stats = self._capture.stats
        self.disconnect()
        ended, stalled = self._no_first_frame(timeout_s)
        if stats.ended:
            raise DriverError(f"{self.name}: {ended}")
        error = f" (last error: {stats.last_error})" if stats.last_error else ""
        raise DriverError(f"{self.name}: {stalled}{error}")

    def _check_calibration_size(self, calibration: Intrinsics, first: Frame) -> None:
        h, w = first.image.shape[:2]
        if (calibration.width, calibration.height) != (w, h):
            self.disconnect()
            raise DriverError(
                f"{self.name}: calibration {self.settings.calibration} is for "
                f"{calibration.width}x{calibration.height} but the stream is {w}x{h}"
            )
