"""The robot side of Intera's IO framework (what ``intera_io.IODeviceInterface`` talks to).

An IO node (``/io/<node>/config`` and ``/state``) lists its devices; each device has
``config`` (its signals' names and formats), ``state`` (the signals' values, and the
times of the commands it has acted on) and ``command`` (``IOComponentCommand``, op
"set"). The SDK re-sends a command every 0.1 s until its time shows up in the state's
``commands``: so a command is acted on once, acknowledged every time, and the state is
published right after it.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from intera_core_msgs.msg import (
    IOComponentCommand,
    IOComponentConfiguration,
    IOComponentStatus,
    IODataStatus,
    IODeviceConfiguration,
    IODeviceStatus,
    IONodeConfiguration,
    IONodeStatus,
    IOStatus,
)

_ACKS_KEPT = 20  # the SDK only looks for its newest command


@dataclass
class Signal:
    type: str  # JSON type: bool | int | float | string
    role: str  # "output": settable by a command; "input": read only
    value: Any


def _status(tag: str = IOStatus.READY) -> IOStatus:
    return IOStatus(tag=tag, id="", detail="")


class IONodeServer:
    """``/io/<node>/config`` (latched) and ``/state``: which devices the node has."""

    def __init__(
        self, rospy: Any, node: str, devices: dict[str, dict], plugins: dict[str, dict]
    ) -> None:
        self._rospy = rospy
        path = f"/io/{node}"
        self._config = IONodeConfiguration(
            time=rospy.get_rostime(),
            node=IOComponentConfiguration(name=node, config="{}"),
            devices=[
                IOComponentConfiguration(name=n, config=json.dumps(c)) for n, c in devices.items()
            ],
            plugins=[
                IOComponentConfiguration(name=n, config=json.dumps(c)) for n, c in plugins.items()
            ],
        )
        self._names = list(devices)
        self._node = node
        self._config_pub = rospy.Publisher(
            path + "/config", IONodeConfiguration, queue_size=1, latch=True
        )
        self._state_pub = rospy.Publisher(path + "/state", IONodeStatus, queue_size=1, latch=True)

    def publish(self) -> None:
        self._config_pub.publish(self._config)
        self._state_pub.publish(
            IONodeStatus(
                time=self._rospy.get_rostime(),
                node=IOComponentStatus(name=self._node, status=_status()),
                devices=[IOComponentStatus(name=n, status=_status()) for n in self._names],
                commands=[],
            )
        )


class IODeviceServer:
    """One device: its config, its state from `read()`, and "set" commands to `write()`."""

    def __init__(
        self,
        rospy: Any,
        node: str,
        device: str,
        device_config: dict,
        read: Callable[[], dict[str, Signal]],
        write: Callable[[str, Any], None],
    ) -> None:
        self._rospy = rospy
        self.device = device
        self._read = read
        self._write = write
        self._lock = threading.Lock()
        self._acks: deque[tuple[Any, str]] = deque(maxlen=_ACKS_KEPT)
        path = f"/io/{node}/{device}"
        self._config = self._config_msg(device_config, read())
        self._config_pub = rospy.Publisher(
            path + "/config", IODeviceConfiguration, queue_size=1, latch=True
        )
        self._state_pub = rospy.Publisher(path + "/state", IODeviceStatus, queue_size=1, latch=True)
        self._sub = rospy.Subscriber(
            path + "/command", IOComponentCommand, self._on_command, queue_size=10
        )

    def _config_msg(self, device_config: dict, signals: dict[str, Signal]) -> Any:
        # The SDK takes a config as valid once its time is non-zero: set once, kept.
        return IODeviceConfiguration(
            time=self._rospy.get_rostime(),
            commanded="{}",
            upgraded="{}",
            device=IOComponentConfiguration(name=self.device, config=json.dumps(device_config)),
            ports=[],
            signals=[
                IOComponentConfiguration(
                    name=n, config=json.dumps({"type": s.type, "role": s.role})
                )
                for n, s in signals.items()
            ],
        )

    def publish_config(self) -> None:
        self._config_pub.publish(self._config)

    def publish_state(self) -> None:
        signals = self._read()
        with self._lock:
            acks = list(self._acks)
        # The state's time must change on every message: the SDK drops repeats.
        self._state_pub.publish(
            IODeviceStatus(
                time=self._rospy.get_rostime(),
                device=IOComponentStatus(name=self.device, status=_status()),
                ports=[],
                signals=[
                    IODataStatus(
                        name=n,
                        format=json.dumps({"type": s.type, "role": s.role}),
                        data=json.dumps([s.value]),
                        status=_status(),
                    )
                    for n, s in signals.items()
                ],
                commands=[t for t, _ in acks],
                responses=[r for _, r in acks],
            )
        )

    def _on_command(self, msg: Any) -> None:
        with self._lock:
            seen = any(t == msg.time for t, _ in self._acks)
        if not seen:
            response = self._apply(msg)
            with self._lock:
                self._acks.append((msg.time, response))
        self.publish_state()

    def _apply(self, msg: Any) -> str:
        if msg.op != "set":
            return json.dumps({"error": f"unsupported op {msg.op!r}"})
        try:
            signals = json.loads(msg.args).get("signals", {})
        except (ValueError, AttributeError):
            return json.dumps({"error": "args are not a JSON object"})
        known = self._read()
        done = []
        for name, body in signals.items():
            data = body.get("data") if isinstance(body, dict) else None
            if name not in known or known[name].role != "output" or not data:
                self._rospy.logwarn("twin: %s: cannot set signal %r", self.device, name)
                continue
            self._write(name, data[0])
            done.append(name)
        return json.dumps({"set": done})
