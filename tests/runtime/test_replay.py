"""`grasprt replay` on fresh records from real `grasprt run`s on the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.writer import Writer

from grasprt.runtime.record_schema import CYCLE_TOPIC, decode_message, encode_message

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "models" / "reference"
PLACEHOLDER = REPO / "models" / "placeholder"
STEPS = 20


def grasprt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grasprt.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def _record(path: Path, *extra: str, bundle: Path = REFERENCE) -> Path:
    p = grasprt(
        "run", "--robot", "sim", "--clock", "sim", "--max-steps", str(STEPS), "-q",
        "--bundle", str(bundle), "--record", str(path), *extra,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return path


@pytest.fixture(scope="module")
def png_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "run.mcap"
    return _record(path, "--record-frames", "1", "--record-frame-format", "png")


def test_replay_through_the_records_own_bundle_is_bit_exact(
    png_record: Path, tmp_path: Path
) -> None:
    out = tmp_path / "same.json"
    p = grasprt("replay", str(png_record), "--json", str(out))
    assert p.returncode == 0, p.stderr
    report = json.loads(out.read_text())
    assert report["same_bundle"] and report["lossless_frames"]
    assert report["cycles"] == STEPS and report["decided"] == STEPS
    assert report["actions_exact"] == report["masks_exact"] == report["commands_exact"] == STEPS
    assert report["bit_exact"] is True
    assert report["action_diff"]["max"] == 0.0 and report["verdict_changes"] == 0
    assert "bit-exact: yes" in p.stdout


def test_replay_through_another_bundle_reports_the_divergence(
    png_record: Path, tmp_path: Path
) -> None:
    out, plot = tmp_path / "d.json", tmp_path / "d.png"
    p = grasprt(
        "replay", str(png_record), "--bundle", str(PLACEHOLDER), "--json", str(out),
        "--plot", str(plot),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    report = json.loads(out.read_text())
    assert not report["same_bundle"] and not report["bit_exact"]
    assert report["action_diff"]["max"] > 0.0
    rows = report["per_cycle"]
    assert len(rows) == STEPS
    for row in rows:
        assert 0.0 <= row["mask_iou"] <= 1.0 and row["action_diff"] >= 0.0
        assert row["verdict_changed"] == (row["recorded_status"] != row["replayed_status"])
    assert report["verdict_changes"] == sum(r["verdict_changed"] for r in rows)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _tampered(src: Path, dst: Path, cycle: int) -> None:
    """A copy of ``src`` with one cycle's first action nudged by one float64 ulp."""
    with open(src, "rb") as f, open(dst, "wb") as g:
        reader = make_reader(f)
        w = Writer(g)
        w.start()
        schemas, channels = {}, {}
        n = 0
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            if schema is not None and schema.id not in schemas:
                schemas[schema.id] = w.register_schema(schema.name, schema.encoding, schema.data)
            if channel.id not in channels:
                channels[channel.id] = w.register_channel(
                    channel.topic, channel.message_encoding, schemas.get(channel.schema_id, 0)
                )
            data = message.data
            if channel.topic == CYCLE_TOPIC:
                if n == cycle:
                    body = decode_message(data)
                    body["action"][0] = float(np.nextafter(body["action"][0], 10.0))
                    data = encode_message(body)
                n += 1
            w.add_message(
                channels[channel.id], log_time=message.log_time, data=data,
                publish_time=message.publish_time, sequence=message.sequence,
            )  # fmt: skip
        w.finish()


def test_one_ulp_off_in_one_cycle_is_not_bit_exact(png_record: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mcap"
    _tampered(png_record, bad, cycle=7)
    out = tmp_path / "bad.json"
    p = grasprt("replay", str(bad), "--json", str(out))
    assert p.returncode == 1
    assert "NOT bit-exact" in p.stderr
    report = json.loads(out.read_text())
    assert report["actions_exact"] == STEPS - 1
    assert [r["index"] for r in report["per_cycle"] if not r["action_exact"]] == [7]


def test_a_record_without_frames_is_one_clear_line(tmp_path: Path) -> None:
    path = _record(tmp_path / "noframes.mcap")
    p = grasprt("replay", str(path))
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert lines[0].startswith("grasprt: error: ")
    assert f"{STEPS} of {STEPS} decided cycles have no recorded frame" in lines[0]
    assert "--record-frames 1" in lines[0]


def test_a_jpeg_record_replays_with_a_note_and_no_verdict_on_exactness(tmp_path: Path) -> None:
    path = _record(tmp_path / "jpeg.mcap", "--record-frames", "1")
    out = tmp_path / "j.json"
    p = grasprt("replay", str(path), "--json", str(out))
    assert p.returncode == 0, p.stderr
    assert "frames are JPEG (lossy)" in p.stdout
    report = json.loads(out.read_text())
    assert report["same_bundle"] and not report["lossless_frames"]
    assert report["decided"] == STEPS
