"""Starting `grasprt twin` for tests, and waiting for things over ROS."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ros_support import stop_group

READY = "twin: ready"


@dataclass
class TwinProcess:
    process: subprocess.Popen
    output: Path  # the twin's stdout and stderr
    log: Path  # its --log (one JSON line per joint command)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def stop(self) -> int:
        stop_group(self.process)
        return self.process.returncode


def start_twin(env: dict[str, str], tmp: Path, *args: str, timeout_s: float = 30.0) -> TwinProcess:
    """`grasprt twin` with `env` (its ROS_MASTER_URI), in its own session; returns once it
    says it is ready."""
    tmp.mkdir(parents=True, exist_ok=True)
    output, log = tmp / "twin.out", tmp / "commands.jsonl"
    with output.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "grasprt.cli", "twin", "--log", str(log), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    twin = TwinProcess(proc, output, log)
    deadline = time.monotonic() + timeout_s
    while READY not in twin.text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_group(proc)
            raise RuntimeError(f"grasprt twin did not get ready:\n{twin.text()}")
        time.sleep(0.05)
    return twin


def log_lines(twin: TwinProcess) -> list[dict]:
    """Every line of the twin's --log: joint commands and the faults it applied."""
    import json

    if not twin.log.exists():
        return []
    text = twin.log.read_text()
    # The twin is still writing: a line without its newline yet is not a record (the
    # writer's buffer can reach the file mid-line; CI once read one and failed on it).
    whole = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in whole.splitlines() if line.strip()]


def commands_logged(twin: TwinProcess) -> list[dict]:
    return [line for line in log_lines(twin) if "received" in line]


def group_gone(pid: int) -> bool:
    """True when no process of the session `pid` led is left (start_new_session)."""
    import os

    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False
