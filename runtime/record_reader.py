"""Read a grasprt flight record (MCAP) back into Python values.

A finished file is read through its index. A file whose writer never finished (the
process was killed, the disk filled) has no summary section; it is then streamed from
the start and read up to the last complete chunk, and ``Record.complete`` is False
with ``Record.damage`` saying where reading stopped.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import zstandard
from mcap.exceptions import McapError
from mcap.reader import NonSeekingReader, make_reader
from mcap.records import Channel, Message, Schema
from mcap.writer import Writer

from grasprt.errors import ConfigError
from grasprt.runtime.record_schema import (
    CYCLE_TOPIC,
    EVENT_TOPIC,
    FRAME_TOPIC,
    MASK_TOPIC,
    RUN_TOPIC,
    SHADOW_TOPIC,
    SUMMARY_TOPIC,
    decode_message,
)

MAGIC = b"\x89MCAP0\r\n"
# Footer record: opcode 0x02, length 20, then summary start, summary offset start, crc.
_FOOTER_TAIL = struct.pack("<BQ", 0x02, 20)
_FOOTER_RECORD = 1 + 8 + 20

# What a cut-off file can raise part-way through a record.
_DAMAGE = (McapError, struct.error, zstandard.ZstdError, ValueError, EOFError, OSError)


@dataclass
class Record:
    """One run as recorded. ``masks`` lines up with ``cycles`` (None: no mask).

    A cycle is the dict :meth:`CycleRecord.to_json` wrote, non-finite floats restored;
    ``CycleRecord.from_json(cycle)`` makes it typed again
    (:mod:`grasprt.runtime.cycle_record`).
    """

    path: Path
    run: dict[str, Any] | None = None
    cycles: list[dict[str, Any]] = field(default_factory=list)
    cycle_times: list[float] = field(default_factory=list)
    masks: list[np.ndarray | None] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    # A shadow bundle's message for each cycle (--shadow), lined up with cycles.
    shadows: list[dict[str, Any] | None] = field(default_factory=list)
    frames: int = 0
    complete: bool = False
    damage: str | None = None

    @property
    def dropped(self) -> int | None:
        """The recorder's count of records it lost, when the summary made it to disk."""
        if self.summary is None:
            return None
        return int(self.summary["recorder"]["dropped"])


def _finished(f: IO[bytes]) -> bool:
    """Whether the file ends in a footer and the closing magic (the writer finished)."""
    size = f.seek(0, os.SEEK_END)
    if size < len(MAGIC) * 2 + _FOOTER_RECORD:
        return False
    f.seek(size - len(MAGIC) - _FOOTER_RECORD)
    tail = f.read(_FOOTER_RECORD + len(MAGIC))
    return tail.startswith(_FOOTER_TAIL) and tail.endswith(MAGIC)


def _open(path: Path) -> IO[bytes]:
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise ConfigError(f"cannot open record {path}: {e.strerror}") from None
    if f.read(len(MAGIC)) != MAGIC:
        f.close()
        raise ConfigError(f"{path} is not an MCAP file (bad magic)")
    f.seek(0)
    return f


Scanned = tuple[Schema | None, Channel, Message]


def _scan(path: Path) -> tuple[list[Scanned], bool, str | None]:
    """Every message with its channel and schema, in file order; complete?; damage."""
    with _open(path) as f:
        if _finished(f):
            f.seek(0)
            try:
                return list(make_reader(f).iter_messages(log_time_order=False)), True, None
            except _DAMAGE:
                # A finished-looking file with a broken index: stream it like a cut one.
                pass
        f.seek(0)
        out: list[Scanned] = []
        damage = None
        try:
            # One by one, so what was read before the damage is kept.
            for item in NonSeekingReader(f).iter_messages(log_time_order=False):
                out.append(item)
        except _DAMAGE as e:
            damage = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return out, False, damage or "file ends without a summary (writer did not finish)"


def _raw_messages(path: Path) -> tuple[list[tuple[str, int, int, bytes]], bool, str | None]:
    """Every message as (topic, log_time ns, sequence, data), in file order."""
    scanned, complete, damage = _scan(path)
    out = [(c.topic, m.log_time, m.sequence, m.data) for _, c, m in scanned]
    return out, complete, damage


def raw_messages(path: str | os.PathLike[str]) -> list[tuple[str, int, int, bytes]]:
    """Every message as (topic, log_time ns, sequence, data), in file order; a cut file
    up to the cut. A cycle's mask, frame and shadow share the cycle's sequence."""
    return _raw_messages(Path(path))[0]


def decode_image(data: bytes) -> np.ndarray:
    """A recorded ``foxglove.CompressedImage`` message's image, RGB (or grey) uint8."""
    buf = np.frombuffer(base64.b64decode(decode_message(data)["data"]), dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("a recorded image does not decode")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def _mask_image(message: dict[str, Any]) -> np.ndarray:
    h, w, step = int(message["height"]), int(message["width"]), int(message["step"])
    data = np.frombuffer(base64.b64decode(message["data"]), dtype=np.uint8)
    return data.reshape(h, step)[:, :w].copy()


def read_record(path: str | os.PathLike[str]) -> Record:
    """Read a record; a cut-off file gives what was on disk up to the cut."""
    path = Path(path)
    messages, complete, damage = _raw_messages(path)
    record = Record(path=path, complete=complete, damage=damage)
    cycle_at: dict[int, int] = {}
    # A shadow is written just before its cycle, with the cycle's sequence.
    shadow_at: dict[int, dict[str, Any]] = {}
    for topic, log_time, seq, data in messages:
        if topic == CYCLE_TOPIC:
            cycle_at[seq] = len(record.cycles)
            record.cycles.append(decode_message(data))
            record.masks.append(None)
            record.shadows.append(shadow_at.pop(seq, None))
            record.cycle_times.append(log_time / 1e9)
        elif topic == MASK_TOPIC:
            i = cycle_at.get(seq)
            if i is not None:
                record.masks[i] = _mask_image(decode_message(data))
        elif topic == SHADOW_TOPIC:
            shadow_at[seq] = decode_message(data)
        elif topic == FRAME_TOPIC:
            record.frames += 1
        elif topic == EVENT_TOPIC:
            record.events.append(decode_message(data))
        elif topic == RUN_TOPIC:
            record.run = decode_message(data)
        elif topic == SUMMARY_TOPIC:
            record.summary = decode_message(data)
    return record


def iter_frames(path: str | os.PathLike[str]) -> Iterator[tuple[float, np.ndarray]]:
    """The recorded camera frames as (loop time s, RGB uint8 image), decoded one by one."""
    messages, _, _ = _raw_messages(Path(path))
    for topic, log_time, _, data in messages:
        if topic != FRAME_TOPIC:
            continue
        buf = np.frombuffer(base64.b64decode(decode_message(data)["data"]), dtype=np.uint8)
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ConfigError(f"{path}: a recorded frame at {log_time} ns does not decode")
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        yield log_time / 1e9, image


def repair_record(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Write what can be read of ``src`` into a new, finished MCAP ``dst``.

    For a record cut short (killed process, full disk): the copy has a summary and
    indexes, so tools that need them open it. Returns the number of messages copied.
    """
    scanned, _, _ = _scan(Path(src))
    try:
        f = open(dst, "xb")  # noqa: SIM115
    except OSError as e:
        raise ConfigError(f"cannot create {dst}: {e.strerror}") from None
    with f:
        writer = Writer(f)
        writer.start(library="grasprt repair_record")
        schema_ids: dict[int, int] = {}
        channel_ids: dict[int, int] = {}
        for schema, channel, message in scanned:
            if schema is not None and schema.id not in schema_ids:
                schema_ids[schema.id] = writer.register_schema(
                    schema.name, schema.encoding, schema.data
                )
            if channel.id not in channel_ids:
                channel_ids[channel.id] = writer.register_channel(
                    channel.topic,
                    channel.message_encoding,
                    0 if schema is None else schema_ids[schema.id],
                    dict(channel.metadata),
                )
            writer.add_message(
                channel_ids[channel.id],
                log_time=message.log_time,
                data=message.data,
                publish_time=message.publish_time,
                sequence=message.sequence,
            )
        writer.finish()
    return len(scanned)
