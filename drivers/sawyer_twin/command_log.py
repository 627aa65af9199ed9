"""``--log PATH``: one JSON line per joint command the twin received, one per fault it
applied (``{"fault": kind, "at": ros_time}``) and one per hold its command timeout made
(``{"hold": "command timeout", "at": ros_time}``).

A JointCommand carries the time it was sent (``header.stamp``) but not which camera
frame it answers, so photon-to-command latency is measured by joining this log (the
ROS time each command arrived) with grasprt's own record of the frame each command
was computed from. Lines are flushed as written: a test reads them while the twin runs.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from grasprt.errors import ConfigError


class CommandLog:
    def __init__(self, path: str | Path) -> None:
        try:
            self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as err:
            raise ConfigError(f"--log {path}: cannot open ({err.strerror})") from None
        self._lock = threading.Lock()
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            if self._file is None:
                return
            self._file.write(line + "\n")
            self._file.flush()
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
