"""The flight recorder: every cycle, event and mask of a run, into one MCAP file.

The loop must never wait on a disk. Its side of the recorder (``put_cycle``,
``put_event``) only appends a reference to a queue and returns; everything that costs
time (JSON, base64, JPEG, compression, writing) happens in one writer thread. A full
queue drops the record and counts it, and the count is written into the file's
summary, so a gap in a record is always explained.

Whatever way a run ends, the file stays readable:

* ``close()`` (clean end, a signal, a fault stop) drains the queue, writes the summary
  and finishes the MCAP (summary section, indexes, footer); it waits at most
  ``close_timeout_s`` so a stuck disk cannot hang shutdown.
* a killed process leaves every finished chunk on disk: chunks are small, each is
  handed to the OS as soon as it is complete, and a chunk is closed at least every
  ``flush_interval_s`` of wall time. :func:`grasprt.runtime.record_reader.read_record`
  reads such a file up to the cut. What is lost is the chunk being filled (at most
  ``flush_interval_s`` of records) and whatever was still queued.

A disk error during the run does not reach the loop: the recorder marks itself
failed (``failure``), counts every record from then on as dropped, and the runner
reports it.

Everything handed to ``put_*`` (the :class:`CycleRecord`, its arrays, the mask, the
frame) belongs to the recorder from then on: the loop must not change it afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import LIBRARY_IDENTIFIER, CompressionType, Writer

import grasprt
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics
from grasprt.runtime.cycle_record import CycleRecord
from grasprt.runtime.record_messages import FRAME_FORMATS as FRAME_FORMATS
from grasprt.runtime.record_messages import MessageEncoder
from grasprt.runtime.record_messages import encode_frame as encode_frame
from grasprt.runtime.record_messages import mask_to_mono8 as mask_to_mono8
from grasprt.runtime.record_messages import time_ns as time_ns
from grasprt.runtime.record_schema import (
    RECORD_FORMAT,
    RUN_TOPIC,
    SUMMARY_TOPIC,
    TOPICS,
    encode_message,
)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class _Cycle:
    t: float
    seq: int
    cycle: CycleRecord
    mask: np.ndarray | None
    frame: np.ndarray | None


@dataclass(frozen=True)
class _Event:
    t: float
    seq: int
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class _Shadow:
    t: float
    seq: int
    message: dict[str, Any]


@dataclass(frozen=True)
class _Close:
    summary: dict[str, Any]
    t: float | None


class _ChunkedFile:
    """Hands every write straight to the OS.

    The MCAP writer only writes whole chunks (plus their indexes); passing each one on
    at once is what leaves a killed process's file readable up to its last chunk.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        n = self._f.write(data)
        self._f.flush()
        return n

    def tell(self) -> int:
        return self._f.tell()

    def flush(self) -> None:
        self._f.flush()


def _check_settings(queue_size: int, frame_every: int, frame_format: str) -> None:
    if queue_size < 1:
        raise ConfigError(f"recorder queue_size must be at least 1, got {queue_size}")
    if frame_every < 0:
        raise ConfigError(f"recorder frame_every must be 0 (off) or more, got {frame_every}")
    if frame_format not in FRAME_FORMATS:
        raise ConfigError(
            f"recorder frame_format must be one of {sorted(FRAME_FORMATS)}, got {frame_format!r}"
        )


class FlightRecorder:
    """Records a run into an MCAP file without ever blocking the loop.

    ``queue_size`` bounds the records waiting for the writer; the last
    ``queue_size // 4`` places (at most 16) are kept for events, so a flood of cycles
    cannot crowd out an episode's end or a fault. ``frame_every`` records the camera
    frame on every Nth ``put_cycle`` (0: never).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        queue_size: int = 512,
        frame_every: int = 0,
        *,
        frame_format: str = "jpeg",
        jpeg_quality: int = 90,
        chunk_size: int = 256 * 1024,
        flush_interval_s: float = 1.0,
        close_timeout_s: float = 5.0,
        overwrite: bool = False,
        kin: Kinematics | None = None,  # adds the arm's frames (/grasprt/tf)
    ) -> None:
        _check_settings(queue_size, frame_every, frame_format)
        self.path = Path(path)
        self.queue_size = queue_size
        self.frame_every = frame_every
        self.frame_format = frame_format
        self.jpeg_quality = jpeg_quality
        self.chunk_size = chunk_size
        self.flush_interval_s = flush_interval_s
        self.close_timeout_s = close_timeout_s
        self.overwrite = overwrite
        self.encoder = MessageEncoder(frame_format, jpeg_quality, kin)  # as the live view's
        self._event_reserve = min(16, queue_size // 4)
        # SimpleQueue, not Queue: its put is reentrant, so a signal handler that records
        # an event while the loop is inside put_cycle cannot deadlock.
        self._queue: queue.SimpleQueue[_Cycle | _Event | _Shadow | _Close] = queue.SimpleQueue()
        self._accepting = False
        self._started = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._file: BinaryIO | None = None
        self._writer: Writer | None = None
        self._channels: dict[str, int] = {}
        self._run_info: dict[str, Any] = {}
        self._run_t: float | None = None
        self._run_written = False
        self._last_t: float | None = None
        self._unflushed = False
        self._last_flush = 0.0
        # Counters, each written by one thread only: the loop's side, then the writer's.
        self._cycles_put = 0
        self._events_put = 0
        self._dropped_full = 0
        self._dropped_closed = 0
        self._dropped_writer = 0
        self._bad_records = 0
        self._written = 0
        self._failure: str | None = None
        self._close_late: str | None = None

    # ---- the loop's side -------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Records lost: a full queue, a failed disk, or a put outside start..close."""
        return self._dropped_full + self._dropped_closed + self._dropped_writer

    @property
    def written(self) -> int:
        """Cycles and events handed to the MCAP writer."""
        return self._written

    @property
    def failure(self) -> str | None:
        """Why the recorder stopped writing (or could not finish in time), else None."""
        return self._failure or self._close_late

    @property
    def bad_records(self) -> int:
        """Records that could not be encoded (a mask of the wrong shape...); also dropped."""
        return self._bad_records

    def frame_due(self) -> bool:
        """Whether the next ``put_cycle`` will record its frame (so copy one only then)."""
        return self.frame_every > 0 and self._cycles_put % self.frame_every == 0

    def start(self, run_info: dict[str, Any], t: float | None = None) -> None:
        """Open the file and start the writer; run before the arm moves.

        ``t`` is the loop clock now; without it the run message takes the time of the
        first record. A path that cannot be written raises :class:`ConfigError`.
        """
        if self._started:
            raise RuntimeError("FlightRecorder.start() called twice")
        wall = time.time()
        run_message = self._run_message(run_info, wall, t)
        mode = "wb" if self.overwrite else "xb"
        try:
            # Not a `with`: the file lives as long as the writer thread, which closes it.
            f = open(self.path, mode)  # noqa: SIM115
        except FileExistsError:
            what = "is a directory" if self.path.is_dir() else "already exists (choose a new name)"
            raise ConfigError(f"record file {self.path} {what}") from None
        except OSError as e:
            raise ConfigError(f"cannot create record file {self.path}: {e.strerror}") from None
        try:
            writer = Writer(
                _ChunkedFile(f),
                chunk_size=self.chunk_size,
                compression=CompressionType.ZSTD,
            )
            writer.start(library=f"grasprt/{grasprt.__version__} {LIBRARY_IDENTIFIER}")
            for spec in TOPICS:
                schema_id = writer.register_schema(
                    spec.schema_name, SchemaEncoding.JSONSchema, spec.schema_bytes()
                )
                self._channels[spec.topic] = writer.register_channel(
                    spec.topic, MessageEncoding.JSON, schema_id
                )
            writer.add_metadata(
                "grasprt",
                {
                    "record_format": str(RECORD_FORMAT),
                    "grasprt_version": grasprt.__version__,
                    "wall_time_iso": datetime.fromtimestamp(wall, UTC).isoformat(),
                },
            )
        except OSError as e:
            # Closing retries the failed write; the first error is the one to report.
            with contextlib.suppress(OSError):
                f.close()
            if mode == "xb":
                # Ours, and useless: leave nothing behind that blocks the next try.
                with contextlib.suppress(OSError):
                    self.path.unlink()
            raise ConfigError(f"cannot write record file {self.path}: {e.strerror}") from None
        self._file = f
        self._writer = writer
        self._run_info = run_message
        self._run_t = t
        self._last_flush = time.monotonic()
        self._started = True
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="flight-recorder", daemon=True)
        self._thread.start()

    def put_cycle(
        self,
        t: float,
        cycle: CycleRecord,
        mask: np.ndarray | None,
        frame: np.ndarray | None = None,
    ) -> bool:
        """Queue one cycle (and its mask, and its frame when one is due). Never blocks.

        ``t`` is the loop clock when the record was made (the message's log time).
        Nothing is copied: pass arrays nobody changes afterwards (copy a frame from a
        driver that reuses its buffers, and only when :meth:`frame_due`). Returns False
        when the record was dropped (and counted). Converting to JSON, and the type
        checks that come with it, happen in the writer thread: a record that fails them
        is counted in :attr:`bad_records`.
        """
        seq = self._cycles_put
        self._cycles_put = seq + 1
        if not self._accepting:
            self._dropped_closed += 1
            return False
        if self._queue.qsize() >= self.queue_size - self._event_reserve:
            self._dropped_full += 1
            return False
        due = frame is not None and self.frame_every > 0 and seq % self.frame_every == 0
        self._queue.put(_Cycle(t, seq, cycle, mask, frame if due else None))
        return True

    def put_event(self, t: float, kind: str, **detail: Any) -> bool:
        """Queue an event (``episode=`` goes to its own field). Never blocks."""
        seq = self._events_put
        self._events_put = seq + 1
        if not self._accepting:
            self._dropped_closed += 1
            return False
        if self._queue.qsize() >= self.queue_size:
            self._dropped_full += 1
            return False
        self._queue.put(_Event(t, seq, kind, detail))
        return True

    def put_shadow(self, t: float, message: dict[str, Any]) -> bool:
        """Queue a shadow bundle's decision for the cycle about to be put. Never blocks."""
        if not self._accepting:
            self._dropped_closed += 1
            return False
        if self._queue.qsize() >= self.queue_size - self._event_reserve:
            self._dropped_full += 1
            return False
        # The sequence of the cycle this belongs to: its put_cycle comes next.
        self._queue.put(_Shadow(t, self._cycles_put, message))
        return True

    def set_camera(self, camera: Any, model: Any) -> None:
        """The camera's and the bundle's intrinsics: frames then carry the model view."""
        self.encoder.set_camera(camera, model)

    def close(self, summary: dict[str, Any], t: float | None = None) -> None:
        """Drain the queue, write the summary, finish the file. Safe to call again.

        Waits at most ``close_timeout_s`` for the writer; past that the recorder
        reports a failure and leaves the writer to finish on its own if it can.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._accepting = False
        if not self._started or self._thread is None:
            return
        self._queue.put(_Close(dict(summary), t))
        self._thread.join(self.close_timeout_s)
        if self._thread.is_alive():
            # Not a write failure: the writer may still get through, and finish the file.
            self._close_late = (
                f"record file {self.path}: writer still busy {self.close_timeout_s:g} s "
                "after close; the file may be left unfinished"
            )
            log.warning("flight recorder: %s", self._close_late)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the writer thread to end; True once it has (or never started)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---- the writer thread -----------------------------------------------------------

    def _run_message(
        self, run_info: dict[str, Any], wall: float, t: float | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "record_format": RECORD_FORMAT,
            "grasprt_version": grasprt.__version__,
            "host": {
                "node": platform.node(),
                "machine": platform.machine(),
                "python": platform.python_version(),
                "pid": os.getpid(),
            },
            "wall_time": wall,
        }
        host = message["host"]
        # The loop's own account of these wins; the recorder only fills gaps.
        message.update(run_info)
        if isinstance(message["host"], dict):
            message["host"] = {**host, **message["host"]}
        message["record_format"] = RECORD_FORMAT
        try:
            iso = datetime.fromtimestamp(float(message["wall_time"]), UTC).isoformat()
        except (TypeError, ValueError, OverflowError, OSError):
            iso = None
        message["wall_time_iso"] = iso
        message["clock_start"] = t
        return message

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.flush_interval_s)
            except queue.Empty:
                self._flush_pending()
                continue
            if isinstance(item, _Close):
                self._finish(item)
                return
            if self._failure is not None:
                self._dropped_writer += 1
                continue
            try:
                self._write_item(item)
            except Exception as e:
                # A recorder bug must cost the record, not the thread: close() relies on it.
                self._dropped_writer += 1
                self._fail(f"record file {self.path}: recorder error: {e!r}")
            if time.monotonic() - self._last_flush >= self.flush_interval_s:
                self._flush_pending()

    def _write_item(self, item: _Cycle | _Event | _Shadow) -> None:
        """Encode one record and write it (the writer thread only)."""
        try:
            messages = self._encode(item)
        except (ValueError, TypeError, cv2.error) as e:
            self._bad_records += 1
            self._dropped_writer += 1
            log.warning("flight recorder: dropped a record it could not encode: %s", e)
            return
        if not self._run_written and not self._emit_run(item.t):
            self._dropped_writer += 1
            return
        if self._emit(messages):
            self._written += 1
            self._last_t = item.t
        else:
            self._dropped_writer += 1

    def _encode(self, item: _Cycle | _Event | _Shadow) -> list[tuple[str, int, int, bytes]]:
        if isinstance(item, _Event):
            return self.encoder.event(item.t, item.seq, item.kind, item.detail)
        if isinstance(item, _Shadow):
            return self.encoder.shadow(item.t, item.seq, item.message)
        return self.encoder.cycle(item.t, item.seq, item.cycle, item.mask, item.frame)

    def _emit(self, messages: list[tuple[str, int, int, bytes]]) -> bool:
        assert self._writer is not None
        try:
            for topic, ns, seq, data in messages:
                self._writer.add_message(
                    self._channels[topic],
                    log_time=ns,
                    data=data,
                    publish_time=ns,
                    sequence=seq % 2**32,
                )
        except Exception as e:
            # Whatever the disk (or the writer) did, the loop must not see it.
            self._fail(f"record file {self.path}: write failed: {e}")
            return False
        self._unflushed = True
        return True

    def _emit_run(self, t: float | None) -> bool:
        if self._run_t is None:
            self._run_t = t
            self._run_info["clock_start"] = t
        self._run_written = True
        return self._emit([(RUN_TOPIC, time_ns(self._run_t), 0, encode_message(self._run_info))])

    def _flush_pending(self) -> None:
        self._last_flush = time.monotonic()
        if not self._unflushed or self._failure is not None or self._writer is None:
            return
        try:
            self._writer.flush()
        except Exception as e:
            self._fail(f"record file {self.path}: write failed: {e}")
        self._unflushed = False

    def _summary_message(self, summary: dict[str, Any]) -> dict[str, Any]:
        message = dict(summary)
        message["recorder"] = {
            "cycles_put": self._cycles_put,
            "events_put": self._events_put,
            "written": self._written,
            "dropped": self.dropped,
            "dropped_queue_full": self._dropped_full,
            "dropped_not_open": self._dropped_closed,
            "dropped_by_writer": self._dropped_writer,
            "bad_records": self._bad_records,
            "failure": self.failure,
        }
        return message

    def _finish(self, item: _Close) -> None:
        assert self._writer is not None and self._file is not None
        t = item.t if item.t is not None else self._last_t
        if self._failure is None:
            if not self._run_written:
                self._emit_run(t)
            try:
                encoded = encode_message(self._summary_message(item.summary))
            except (ValueError, TypeError, RecursionError) as e:
                # The loop's part cannot be written; the recorder's own counts still can.
                self._bad_records += 1
                log.warning("flight recorder: the run summary could not be encoded: %s", e)
                encoded = encode_message(self._summary_message({}))
            self._emit([(SUMMARY_TOPIC, time_ns(t), 0, encoded)])
        if self._failure is None:
            try:
                self._writer.finish()
                self._file.flush()
                os.fsync(self._file.fileno())
            except Exception as e:
                self._fail(f"record file {self.path}: could not finish: {e}")
        try:
            self._file.close()
        except OSError as e:
            self._fail(f"record file {self.path}: could not close: {e}")

    def _fail(self, reason: str) -> None:
        # Refuse new records first: whoever sees ``failure`` set must see puts refused.
        self._accepting = False
        if self._failure is None:
            self._failure = reason
            log.warning("flight recorder stopped: %s", reason)
