"""The live view: the record's topics, as they are written, on a Foxglove WebSocket.

``grasprt run --live [HOST:]PORT`` starts a Foxglove server (the ``foxglove-sdk``
package, an optional extra) carrying the same topics, in the same JSON schemas, as
the flight record (:mod:`grasprt.runtime.record_messages` encodes both), so one
layout (docs/foxglove-layout.json) reads a record and a live run alike.

It never blocks the loop: ``put_*`` appends to a bounded queue and returns; one
sender thread encodes and hands messages to the server, which keeps its own bounded
backlog per client. A full queue drops the record and counts it (``dropped``, in the
run's summary). With no client subscribed nothing is encoded at all.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics
from grasprt.runtime.cycle_record import CycleRecord
from grasprt.runtime.record_messages import Message, MessageEncoder
from grasprt.runtime.record_schema import TOPICS
from grasprt.types import Intrinsics

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(spec: str) -> Address:
    """``[HOST:]PORT`` (an IPv6 host in brackets); the host defaults to 127.0.0.1."""
    host, sep, port = str(spec).rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    host = host.strip("[]") or DEFAULT_HOST
    try:
        n = int(port)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise ConfigError(f"--live {spec}: expected [HOST:]PORT with PORT 0..65535")
    return Address(host, n)


def _foxglove() -> Any:
    try:
        import foxglove
    except ImportError:
        raise ConfigError(
            "--live needs the foxglove-sdk package: pip install 'grasprt[live]'"
        ) from None
    return foxglove


@dataclass(frozen=True)
class _Item:
    kind: str  # "cycle", "event", "shadow"
    t: float
    seq: int
    args: tuple[Any, ...]


_STOP = _Item("stop", 0.0, 0, ())


class LiveView:
    """A Foxglove WebSocket server fed from the loop's records (a :class:`RecordSink`)."""

    def __init__(
        self,
        address: Address,
        *,
        kin: Kinematics | None = None,
        queue_size: int = 64,
        jpeg_quality: int = 80,
    ) -> None:
        self.address = address
        self.queue_size = queue_size
        self.encoder = MessageEncoder("jpeg", jpeg_quality, kin)
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._accepting = False
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._context: Any = None
        self._channels: dict[str, Any] = {}
        self._seq = {"cycle": 0, "event": 0}
        self.dropped = 0
        self.sent = 0
        self.unwatched = 0
        self.failure: str | None = None

    @property
    def port(self) -> int:
        return int(self._server.port) if self._server is not None else self.address.port

    def start(self) -> None:
        """Bind and serve; a port in use or an address not here is a ConfigError."""
        fox = _foxglove()
        # Kept: the channels and the server live only as long as their context.
        self._context = context = fox.Context()
        for spec in TOPICS:
            schema = fox.Schema(
                name=spec.schema_name, encoding="jsonschema", data=spec.schema_bytes()
            )
            self._channels[spec.topic] = fox.Channel(
                spec.topic, schema=schema, message_encoding="json", context=context
            )
        try:
            self._server = fox.start_server(
                name="grasprt",
                host=self.address.host,
                port=self.address.port,
                context=context,
            )
        except Exception as e:  # the SDK raises its own error types from Rust
            raise ConfigError(f"--live {self.address}: cannot listen: {e}") from None
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()

    # ---- the loop's side (never blocks) ---------------------------------------------

    def _put(self, item: _Item) -> bool:
        if not self._accepting:
            return False
        if self._queue.qsize() >= self.queue_size:
            self.dropped += 1
            return False
        self._queue.put(item)
        return True

    def put_cycle(
        self, t: float, cycle: CycleRecord, mask: np.ndarray | None, frame: np.ndarray | None = None
    ) -> bool:
        seq = self._seq["cycle"]
        self._seq["cycle"] = seq + 1
        return self._put(_Item("cycle", t, seq, (cycle, mask, frame)))

    def put_event(self, t: float, kind: str, **detail: Any) -> bool:
        seq = self._seq["event"]
        self._seq["event"] = seq + 1
        return self._put(_Item("event", t, seq, (kind, detail)))

    def put_shadow(self, t: float, message: dict[str, Any]) -> bool:
        return self._put(_Item("shadow", t, self._seq["cycle"], (message,)))

    def set_camera(self, camera: Intrinsics, model: Intrinsics) -> None:
        self._queue.put(_Item("camera", 0.0, 0, (camera, model)))

    def close(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Stop serving; what it sent and dropped (for the run's summary)."""
        self._accepting = False
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout_s)
            self._thread = None
        if self._server is not None:
            self._server.stop()
        return self.stats()

    def stats(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "sent": self.sent,
            "dropped": self.dropped,
            "unwatched": self.unwatched,
            "failure": self.failure,
        }

    # ---- the sender thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._send(item)
            except Exception as e:
                # A record the encoder refuses costs that record, never the thread.
                self.dropped += 1
                if self.failure is None:
                    self.failure = f"{type(e).__name__}: {e}"
                    log.warning("live view: dropped a record: %s", self.failure)

    def _send(self, item: _Item) -> None:
        if item.kind == "camera":
            self.encoder.set_camera(*item.args)
            return
        if not any(c.has_sinks() for c in self._channels.values()):
            self.unwatched += 1
            return
        self._log(self._encode(item))
        self.sent += 1

    def _encode(self, item: _Item) -> list[Message]:
        if item.kind == "event":
            kind, detail = item.args
            return self.encoder.event(item.t, item.seq, kind, detail)
        if item.kind == "shadow":
            return self.encoder.shadow(item.t, item.seq, item.args[0])
        cycle, mask, frame = item.args
        return self.encoder.cycle(item.t, item.seq, cycle, mask, frame)

    def _log(self, messages: list[Message]) -> None:
        for topic, ns, _seq, data in messages:
            self._channels[topic].log(data, log_time=ns)
