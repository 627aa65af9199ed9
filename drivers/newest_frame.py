"""A holder of a camera's newest frame, filled by a capture thread or by a callback.

A pull source gives one ``grab()`` callable that blocks until the next frame (or a
timeout) and returns it; this runs it in a loop in a daemon thread. A push source (frames
arrive in someone else's callback) passes no ``grab`` and calls :meth:`NewestFrame.put`.
Either way only the newest frame is kept, under a lock, so the control loop's
``latest()`` never blocks and never sees a queue of old frames: a slow reader skips
frames, and the skipped ones are counted as drops. Errors in ``grab()`` are counted and
retried with a growing pause; the loop notices a dead camera by the age of the newest
frame, not by an exception here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from grasprt.errors import DriverError
from grasprt.types import Frame

log = logging.getLogger(__name__)


class EndOfStream(Exception):
    """Raised by a grab function whose source has no more frames (a file played out)."""


GrabFn = Callable[[], Frame | None]


@dataclass(frozen=True)
class CaptureStats:
    """Counters since the capture was created (they survive restarts)."""

    frames: int  # frames delivered
    drops: int  # frames replaced before anyone read them
    errors: int  # exceptions raised by grab()
    last_error: str | None
    ended: bool  # the source said it has no more frames


class NewestFrame:
    """Keeps the newest :class:`Frame`, from ``grab()`` in a daemon thread or from :meth:`put`.

    ``grab()`` returns a frame, or None when it has nothing this time (a timeout, a
    frame it discarded); it raises :class:`EndOfStream` when the source is finished.
    Drivers that wait inside ``grab()`` (reconnect back-off, pacing a file) use
    :meth:`sleep` so that :meth:`stop` is never held up by them. With ``grab=None``
    there is no thread: :meth:`start` and :meth:`stop` only open and close the door
    through which :meth:`put` lets frames in.
    """

    def __init__(
        self,
        name: str,
        grab: GrabFn | None,
        *,
        error_backoff_s: float = 0.05,
        max_error_backoff_s: float = 2.0,
    ) -> None:
        self.name = name
        self._grab = grab
        self._error_backoff_s = error_backoff_s
        self._max_error_backoff_s = max_error_backoff_s
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._accepting = False  # push mode's "running"
        self._latest: Frame | None = None
        self._latest_read = True
        self._frames = 0
        self._drops = 0
        self._errors = 0
        self._last_error: str | None = None
        self._ended = False

    # -- control -------------------------------------------------------------------

    def start(self) -> None:
        """Start capturing; after :meth:`stop` this starts a fresh thread."""
        if self._thread is not None and self._thread.is_alive():
            if not self._stop.is_set():
                return
            raise DriverError(f"{self.name}: the previous capture thread has not stopped yet")
        self._stop.clear()
        with self._cond:
            self._ended = False
            self._accepting = True
        if self._grab is None:
            return
        self._thread = threading.Thread(target=self._run, name=f"capture:{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the thread to stop and wait for it; False if it is still stuck in grab()."""
        self._stop.set()
        with self._cond:
            self._accepting = False
            self._cond.notify_all()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning("%s: capture thread still blocked after %.1f s", self.name, timeout_s)
            return False
        return True

    def restart(self, timeout_s: float = 5.0) -> None:
        """Stop and start again, keeping the counters (used to reopen a device)."""
        self.stop(timeout_s)
        self.start()

    def sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds``; False (at once) if the capture is being stopped."""
        return not self._stop.wait(max(0.0, seconds))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        if self._stop.is_set():
            return False
        if self._grab is None:
            return self._accepting
        return self._thread is not None and self._thread.is_alive()

    # -- filling -------------------------------------------------------------------

    def put(self, frame: Frame) -> bool:
        """Hold ``frame`` as the newest; False (frame ignored) unless started and not stopped."""
        with self._cond:
            if not self._accepting:
                return False
            if not self._latest_read:
                self._drops += 1
            self._latest = frame
            self._latest_read = False
            self._frames += 1
            self._cond.notify_all()
            return True

    def finish(self, reason: str = "") -> None:
        """Mark the source as played out: waiters return, no more frames are taken."""
        with self._cond:
            self._ended = True
            self._accepting = False
            self._cond.notify_all()
        log.info("%s: end of stream%s", self.name, f" ({reason})" if reason else "")

    # -- reading -------------------------------------------------------------------

    def latest(self) -> Frame | None:
        """The newest frame, without blocking; None before the first one."""
        with self._cond:
            self._latest_read = True
            return self._latest

    def wait_for_frame(self, after_seq: int = -1, timeout_s: float = 5.0) -> Frame | None:
        """Block until a frame with ``seq > after_seq`` is held; None on timeout or end."""
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    (self._latest is not None and self._latest.seq > after_seq)
                    or self._ended
                    or self._stop.is_set()
                ),
                timeout_s,
            )
            frame = self._latest
            if frame is None or frame.seq <= after_seq:
                return None
            self._latest_read = True
            return frame

    def wait_for_frames(self, count: int, timeout_s: float = 5.0) -> bool:
        """Block until ``count`` frames have been delivered in total; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._frames >= count or self._ended or self._stop.is_set(), timeout_s
            ) and (self._frames >= count)

    def clear(self) -> None:
        """Forget the held frame (a reconnected camera must not serve pre-drop frames)."""
        with self._cond:
            self._latest = None
            self._latest_read = True

    @property
    def stats(self) -> CaptureStats:
        with self._cond:
            return CaptureStats(
                self._frames, self._drops, self._errors, self._last_error, self._ended
            )

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        assert self._grab is not None  # start() runs no thread without one
        backoff = self._error_backoff_s
        while not self._stop.is_set():
            try:
                frame = self._grab()
            except EndOfStream as e:
                self.finish(str(e))
                return
            except Exception as e:  # a camera must never kill its thread silently
                self._count_error(e)
                if not self.sleep(backoff):
                    return
                backoff = min(backoff * 2.0, self._max_error_backoff_s)
                continue
            backoff = self._error_backoff_s
            if frame is not None:
                self.put(frame)

    def _count_error(self, error: Exception) -> None:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        with self._cond:
            self._errors += 1
            first = self._last_error != message
            self._last_error = message
        # Logged once per distinct message: a camera unplugged for a minute is one line.
        if first:
            log.warning("%s: capture error: %s", self.name, message)
