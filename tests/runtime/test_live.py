"""The live view: a real `grasprt run --live` and a real WebSocket client.

The client speaks the Foxglove WebSocket protocol (``foxglove.sdk.v1``, formerly
``foxglove.websocket.v1``) itself, with the `websockets` package: it reads the
server's advertisement, subscribes, and decodes the binary message frames into
cycles, masks, frames and the arm's frames while the loop runs; then the run is
stopped with SIGINT, as an operator would.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from grasprt.errors import ConfigError
from grasprt.runtime.cycle_record import CycleRecord
from grasprt.runtime.live import LiveView, parse_address
from grasprt.runtime.record_schema import (
    CYCLE_TOPIC,
    FRAME_TOPIC,
    MASK_TOPIC,
    MODEL_VIEW_TOPIC,
    TF_TOPIC,
    TOPICS,
    decode_message,
)

pytest.importorskip("foxglove")
ws_client = pytest.importorskip("websockets.sync.client")

# foxglove-sdk 0.30's server negotiates the protocol's current name; older servers
# (and Foxglove's docs) call it foxglove.websocket.v1. The frames are the same.
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]
WANTED = (CYCLE_TOPIC, MASK_TOPIC, FRAME_TOPIC, MODEL_VIEW_TOPIC, TF_TOPIC)
WAIT_S = 120.0  # a bound on waiting for a loaded machine, not a timing assertion


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connect(port: int, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return ws_client.connect(
                f"ws://127.0.0.1:{port}", subprotocols=SUBPROTOCOLS, open_timeout=5
            )
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _decode(topic: str, payload: bytes) -> Any:
    msg = decode_message(payload)
    if topic == CYCLE_TOPIC:
        return CycleRecord.from_json(msg)
    if topic == MASK_TOPIC:
        data = np.frombuffer(base64.b64decode(msg["data"]), np.uint8)
        return data.reshape(msg["height"], msg["step"])[:, : msg["width"]]
    if topic in (FRAME_TOPIC, MODEL_VIEW_TOPIC):
        buf = np.frombuffer(base64.b64decode(msg["data"]), np.uint8)
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return msg


def _subscribe_and_read(ws: Any) -> tuple[dict[str, dict], dict[str, list[Any]]]:
    """Advertise -> subscribe -> binary message data, until every wanted topic came twice."""
    channels: dict[str, dict] = {}
    got: dict[str, list[Any]] = {t: [] for t in WANTED}
    by_sub: dict[int, str] = {}
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and min(len(v) for v in got.values()) < 2:
        frame = ws.recv(timeout=WAIT_S)
        if isinstance(frame, str):
            op = json.loads(frame)
            if op["op"] == "advertise":
                new = [c for c in op["channels"] if c["topic"] in WANTED]
                for c in new:
                    channels[c["topic"]] = c
                    by_sub[c["id"]] = c["topic"]
                subs = [{"id": c["id"], "channelId": c["id"]} for c in new]
                if subs:
                    ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))
            continue
        opcode, sub_id, _log_time = struct.unpack_from("<BIQ", frame)
        if opcode == 0x01 and sub_id in by_sub:
            topic = by_sub[sub_id]
            got[topic].append(_decode(topic, frame[13:]))
    return channels, got


def test_a_foxglove_client_decodes_the_loops_topics_while_it_runs(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "grasprt.cli", "run", "--robot", "sim", "--sched", "normal"]
    cmd += ["--max-steps", "150", "--live", f"127.0.0.1:{port}", "--json", str(tmp_path / "s.json")]
    # The wall-time heartbeat is not under test: on a loaded machine it gets room.
    (tmp_path / "w.toml").write_text("[watchdog]\nheartbeat_s = 10.0\n")
    cmd += ["--config", str(tmp_path / "w.toml")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with _connect(port, proc) as ws:
            assert ws.subprotocol in SUBPROTOCOLS
            channels, got = _subscribe_and_read(ws)
            running = proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert running, "the loop had ended before the client had its messages"
    assert "live view: Foxglove WebSocket on ws://127.0.0.1" in err.decode()
    # The same schemas as the record's, by name: Foxglove's panels find them so.
    names = {spec.topic: spec.schema_name for spec in TOPICS}
    for topic in WANTED:
        assert channels[topic]["schemaName"] == names[topic]
        assert channels[topic]["encoding"] == "json"
        assert len(got[topic]) >= 2, topic
    cycles = got[CYCLE_TOPIC]
    assert all(isinstance(c, CycleRecord) and len(c.q) == 7 for c in cycles)
    assert cycles[1].step > cycles[0].step or cycles[1].episode > cycles[0].episode
    for mask in got[MASK_TOPIC]:
        assert mask.shape == (100, 100) and set(np.unique(mask)) <= {0, 255}
    for frame in got[FRAME_TOPIC]:
        assert frame is not None and frame.ndim == 3 and frame.shape[2] == 3
        assert frame.std() > 1.0  # a rendered scene, not a blank
    tf = got[TF_TOPIC][0]["transforms"]
    children = {t["child_frame_id"] for t in tf}
    assert {"right_l0", "right_l6", "right_hand", "wrist_camera_optical"} <= children
    for t in tf:
        r = t["rotation"]
        assert abs(sum(r[k] ** 2 for k in "xyzw") - 1.0) < 1e-9
    assert proc.returncode == 130, err.decode()
    summary = json.loads((tmp_path / "s.json").read_text())
    live = summary["live"]
    assert live["sent"] >= len(cycles) and live["dropped"] >= 0 and live["failure"] is None


def test_live_without_foxglove_sdk_is_one_clear_line() -> None:
    # Hides the installed package from this one process: what a robot PC without the
    # extra sees.
    code = (
        "import sys; sys.modules['foxglove'] = None\n"
        "from grasprt.cli import main\n"
        "main(['run', '--robot', 'sim', '--max-steps', '1', '--live', '0'])\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert lines[-1] == (
        "grasprt: error: --live needs the foxglove-sdk package: pip install 'grasprt[live]'"
    )
    assert "Traceback" not in p.stderr


def test_listening_beyond_this_machine_says_so() -> None:
    cmd = [sys.executable, "-m", "grasprt.cli", "run", "--robot", "sim", "--clock", "sim"]
    cmd += ["--max-steps", "2", "-q", "--live", "0.0.0.0:0"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "grasprt: warning: live view listening on 0.0.0.0, beyond this machine" in p.stderr


@pytest.mark.parametrize(
    ("spec", "host", "port", "loopback"),
    [
        ("8765", "127.0.0.1", 8765, True),
        ("localhost:9000", "localhost", 9000, True),
        ("0.0.0.0:8765", "0.0.0.0", 8765, False),
        ("[::1]:8765", "::1", 8765, True),
        ("192.168.1.5:1", "192.168.1.5", 1, False),
    ],
)
def test_live_addresses(spec: str, host: str, port: int, loopback: bool) -> None:
    a = parse_address(spec)
    assert (a.host, a.port, a.loopback) == (host, port, loopback)


@pytest.mark.parametrize("spec", ["", "host:", "x:70000", "8765x", "-1"])
def test_bad_live_addresses_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="--live"):
        parse_address(spec)


def test_a_full_queue_drops_and_counts_and_never_blocks() -> None:
    class Stuck(LiveView):
        # The sender never takes anything: the queue fills and stays full.
        def _run(self) -> None:
            pass

    live = Stuck(parse_address("127.0.0.1:0"), queue_size=4)
    live.start()
    try:
        taken = [live.put_event(float(k), "episode_start", episode=k) for k in range(10)]
    finally:
        stats = live.close(timeout_s=1.0)
    assert taken == [True] * 4 + [False] * 6
    assert stats["dropped"] == 6 and stats["sent"] == 0
    assert live.put_event(11.0, "late") is False  # closed: refused


def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot listen"):
            LiveView(parse_address(f"127.0.0.1:{port}")).start()
