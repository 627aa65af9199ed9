"""docs/foxglove-layout.json, checked without a screenshot: it parses, it is laid out
as Foxglove's layout files are, and every topic and message path it names is in a
real record (a sim run with frames and a shadow bundle)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from grasprt.runtime.record_reader import raw_messages
from grasprt.runtime.record_schema import TOPICS, decode_message

REPO = Path(__file__).resolve().parents[2]
LAYOUT = REPO / "docs" / "foxglove-layout.json"
PATH = re.compile(r"^(/grasprt/[a-z_]+)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)$")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _panels(tree: Any) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    assert set(tree) >= {"direction", "first", "second"}, tree
    return _panels(tree["first"]) + _panels(tree["second"])


def _resolve(message: Any, fields: str) -> bool:
    for name, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", fields):
        if name:
            if not isinstance(message, dict) or name not in message:
                return False
            message = message[name]
        else:
            if not isinstance(message, list) or int(index) >= len(message):
                return False
            message = message[int(index)]
    return message is not None


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("layout") / "run.mcap"
    cmd = [sys.executable, "-m", "grasprt.cli", "run", "--robot", "sim", "--clock", "sim"]
    cmd += ["--max-steps", "8", "-q", "--record", str(path), "--record-frames", "1"]
    cmd += ["--shadow", str(REPO / "models" / "placeholder")]
    # Two bundles a cycle on a machine others load: the wall-time heartbeat (not under
    # test here) gets room, so a slow cycle cannot end the run as a fault.
    watchdog = path.parent / "watchdog.toml"
    watchdog.write_text("[watchdog]\nheartbeat_s = 10.0\n")
    cmd += ["--config", str(watchdog)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for topic, _ns, _seq, data in raw_messages(path):
        by_topic.setdefault(topic, []).append(decode_message(data))
    return by_topic


def test_the_layout_parses_and_every_panel_is_placed_and_configured() -> None:
    layout = json.loads(LAYOUT.read_text())
    placed = _panels(layout["layout"])
    assert sorted(placed) == sorted(layout["configById"])
    kinds = {p.split("!")[0] for p in placed}
    assert {"Image", "Plot", "3D", "RawMessages"} <= kinds
    images = [layout["configById"][p]["imageMode"]["imageTopic"] for p in placed if "Image" in p]
    assert images == ["/grasprt/frame", "/grasprt/mask", "/grasprt/model_view"]


def test_every_topic_and_path_the_layout_names_is_in_a_real_record(
    record: dict[str, list[dict[str, Any]]],
) -> None:
    named = [s for s in _strings(json.loads(LAYOUT.read_text())) if s.startswith("/grasprt/")]
    assert len(named) > 20
    known = {spec.topic for spec in TOPICS}
    for s in named:
        m = PATH.match(s)
        assert m, f"not a topic or message path: {s!r}"
        topic, fields = m.groups()
        assert topic in known, s
        assert record.get(topic), f"{topic} has no message in the record"
        assert any(_resolve(msg, fields) for msg in record[topic]), f"{s} resolves nowhere"
