"""The flight recorder and its reader, on real MCAP files written and read back.

Also the JSON Schema checker the record tests use (``schema_errors``; jsonschema is not a
dependency), with tests of its own so that a passing check means something.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcap.reader import make_reader

from grasprt.errors import ConfigError
from grasprt.runtime.cycle_record import CycleRecord, cycle_schema
from grasprt.runtime.record_reader import MAGIC, Record, iter_frames, read_record, repair_record
from grasprt.runtime.record_schema import (
    CYCLE_TOPIC,
    EVENT_TOPIC,
    FRAME_TOPIC,
    MASK_TOPIC,
    RUN_TOPIC,
    SUMMARY_TOPIC,
    TOPICS,
    decode_message,
    encode_message,
)
from grasprt.runtime.recorder import FlightRecorder, mask_to_mono8

WAIT_S = 30.0  # generous bound on waits for the writer thread; nothing asserts a duration


class GatedRecorder(FlightRecorder):
    """A recorder whose writer stops before each record until the test opens the gate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def _write_item(self, item: Any) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT_S), "test never opened the gate"
        super()._write_item(item)


def _mask(k: int) -> np.ndarray:
    m = np.zeros((100, 100), dtype=np.float32)
    m[k : k + 10, 20 + k : 35 + k] = 1.0
    return m


def _frame(k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    return rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)


def _cycle_values(k: int) -> dict[str, Any]:
    """Cycle k's fields, numpy where the loop has numpy."""
    rng = np.random.default_rng(100 + k)
    return {
        "episode": k // 5,
        "step": k % 5 + 1,
        "slot": k,
        "due": 0.1 * k,
        "lateness_ms": float(rng.uniform(0, 2)),
        "missed": 0,
        "frame_stamp": 0.1 * k - 0.03,
        "frame_age_ms": 30.0,
        "q": rng.normal(size=7),
        "gripper": np.float32(rng.uniform()),
        "object_held": None,
        "action": rng.uniform(-1, 1, size=8).astype(np.float32),
        "requested": rng.normal(size=7),
        "command": rng.normal(size=7),
        "gripper_closed": bool(k % 2),
        "limiter_status": np.int64(k % 3 - 1),
        "limited": k % 3 != 1,
        "verdict": "ok",
        "reason": None,
        "mask_area": float(_mask(k).sum()),
        "photon_to_command_ms": 30.0 + k,
        "stages_ms": {"segmenter": float(rng.uniform(5, 9)), "controller": 0.4},
    }


def _cycle(k: int, **changes: Any) -> CycleRecord:
    return CycleRecord(**{**_cycle_values(k), **changes})


def _as_json(cycle: CycleRecord) -> dict[str, Any]:
    """What a cycle should read back as: arrays as lists, numpy scalars as numbers."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cycle):
        value = getattr(cycle, f.name)
        if isinstance(value, np.ndarray):
            out[f.name] = value.tolist()
        elif isinstance(value, np.generic):
            out[f.name] = value.item()
        else:
            out[f.name] = value
    return out


def _record_run(path: Path, n: int, **kwargs: Any) -> FlightRecorder:
    rec = FlightRecorder(path, **kwargs)
    rec.start({"config": {"episodes": 2, "rate_hz": 10.0}, "bundle": {"interface": 1}}, t=0.0)
    for k in range(n):
        if k % 5 == 0:
            assert rec.put_event(0.1 * k, "episode_start", episode=k // 5)
        assert rec.put_cycle(0.1 * k + 0.01, _cycle(k), _mask(k), _frame(k))
    rec.close({"episodes": 2, "cycles": n}, t=0.1 * n)
    return rec


def _raw(path: Path) -> list[tuple[str, int, Any]]:
    with open(path, "rb") as f:
        reader = make_reader(f, validate_crcs=True)
        return [
            (channel.topic, message.log_time, message)
            for _, channel, message in reader.iter_messages(log_time_order=False)
        ]


# ---- a minimal JSON Schema validator (jsonschema is not installed) ---------------------

# Keywords that constrain nothing a validator must check.
_ANNOTATIONS = {"$schema", "title", "description", "contentEncoding"}
_CHECKED = {
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
}

_IS_TYPE = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What is wrong with ``value`` under ``schema`` (the keywords our schemas use).

    A keyword it does not know is an error too, so a schema cannot outgrow the checker
    unnoticed.
    """
    unknown = set(schema) - _ANNOTATIONS - _CHECKED
    if unknown:
        return [f"{where}: validator does not know {sorted(unknown)}"]
    types_ = schema.get("type")
    if types_ is not None:
        listed = types_ if isinstance(types_, list) else [types_]
        if not any(_IS_TYPE[t](value) for t in listed):
            return [f"{where}: {value!r} is not {listed}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, where)
    if isinstance(value, list):
        errors += _array_errors(value, schema, where)
    if _IS_TYPE["number"](value) and not math.isnan(value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    errors = [
        f"{where}: missing {name}" for name in schema.get("required", []) if name not in value
    ]
    for name, sub in value.items():
        if name in props:
            errors += schema_errors(sub, props[name], f"{where}.{name}")
        elif extra is False:
            errors.append(f"{where}: unexpected field {name}")
        elif isinstance(extra, dict):
            errors += schema_errors(sub, extra, f"{where}.{name}")
    return errors


def _array_errors(value: list[Any], schema: dict[str, Any], where: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0):
        errors.append(f"{where}: {len(value)} items, fewer than {schema['minItems']}")
    if len(value) > schema.get("maxItems", math.inf):
        errors.append(f"{where}: {len(value)} items, more than {schema['maxItems']}")
    if isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            errors += schema_errors(sub, schema["items"], f"{where}[{i}]")
    return errors


_TOY = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": 0},
        "x": {"type": ["number", "null"]},
        "v": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "w": {"type": "string", "enum": ["a", "b"]},
        "m": {"type": "object", "additionalProperties": {"type": "number"}},
    },
    "required": ["n", "x", "v", "w", "m"],
    "additionalProperties": False,
}
_TOY_OK = {"n": 1, "x": None, "v": [1.0, 2], "w": "a", "m": {"s": 1.5}}


def test_the_validator_passes_what_conforms() -> None:
    assert schema_errors(_TOY_OK, _TOY) == []
    assert schema_errors({**_TOY_OK, "x": 2.5, "m": {}}, _TOY) == []
    assert schema_errors(float("nan"), {"type": "number", "minimum": 0}) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"n": True}, "is not ['integer']"),  # a bool is no integer
        ({"n": 1.5}, "is not ['integer']"),
        ({"n": -1}, "< 0"),
        ({"x": "1"}, "is not ['number', 'null']"),
        ({"v": [1.0]}, "fewer than 2"),
        ({"v": [1.0, 2.0, 3.0]}, "more than 2"),
        ({"v": [1.0, None]}, "$.v[1]"),
        ({"w": "c"}, "not in"),
        ({"m": {"s": "fast"}}, "$.m.s"),
        ({"extra": 1}, "unexpected field extra"),
    ],
)
def test_the_validator_finds_what_does_not_conform(change: dict[str, Any], words: str) -> None:
    errors = schema_errors({**_TOY_OK, **change}, _TOY)
    assert errors and words in errors[0]


def test_the_validator_finds_a_missing_field_and_an_unknown_keyword() -> None:
    without_w = {k: v for k, v in _TOY_OK.items() if k != "w"}
    assert schema_errors(without_w, _TOY) == ["$: missing w"]
    assert "does not know" in schema_errors(1, {"type": "integer", "multipleOf": 2})[0]


# ---- round trip ------------------------------------------------------------------------


def test_round_trip_of_every_topic_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    n = 10
    rec = _record_run(path, n, frame_every=3, frame_format="png")
    assert rec.failure is None
    assert rec.dropped == 0
    assert rec.written == n + 2  # cycles and the two episode_start events

    record = read_record(path)
    assert record.complete and record.damage is None
    assert record.cycles == [_as_json(_cycle(k)) for k in range(n)]
    for k, cycle in enumerate(record.cycles):
        assert schema_errors(cycle, cycle_schema(), f"cycle {k}") == []
    assert record.cycle_times == pytest.approx([0.1 * k + 0.01 for k in range(n)], abs=1e-9)
    assert record.events == [
        {"time": 0.0, "kind": "episode_start", "episode": 0, "detail": {}},
        {"time": 0.5, "kind": "episode_start", "episode": 1, "detail": {}},
    ]
    for k, mask in enumerate(record.masks):
        assert mask is not None and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, (_mask(k) * 255).astype(np.uint8))
    assert record.frames == len(range(0, n, 3))

    assert record.run is not None
    assert record.run["config"] == {"episodes": 2, "rate_hz": 10.0}
    assert record.run["bundle"] == {"interface": 1}
    assert record.run["host"]["pid"] == os.getpid()
    assert record.run["clock_start"] == 0.0
    assert isinstance(record.run["wall_time"], float) and record.run["wall_time_iso"]

    assert record.summary is not None
    assert record.summary["episodes"] == 2 and record.summary["cycles"] == n
    counts = record.summary["recorder"]
    assert counts["written"] == n + 2 and counts["dropped"] == 0
    assert counts["cycles_put"] == n and counts["events_put"] == 2
    assert record.dropped == 0


def test_the_run_message_keeps_the_recorders_host_fields_the_runner_did_not_give(
    tmp_path: Path,
) -> None:
    path = tmp_path / "host.mcap"
    rec = FlightRecorder(path)
    rec.start({"host": {"node": "robot-pc", "python": "3.11.0"}}, t=0.0)
    rec.close({})
    run = read_record(path).run
    assert run is not None
    assert run["host"]["node"] == "robot-pc" and run["host"]["python"] == "3.11.0"
    assert run["host"]["pid"] == os.getpid() and run["host"]["machine"]


def test_frames_decode_to_the_recorded_images(tmp_path: Path) -> None:
    path = tmp_path / "png.mcap"
    _record_run(path, 7, frame_every=2, frame_format="png")
    frames = list(iter_frames(path))
    assert [round(t, 6) for t, _ in frames] == [round(0.1 * k + 0.01, 6) for k in (0, 2, 4, 6)]
    for (_, image), k in zip(frames, (0, 2, 4, 6), strict=True):
        np.testing.assert_array_equal(image, _frame(k))  # PNG is lossless, RGB order kept

    # JPEG is lossy: a smooth image comes back close, in the same colour order.
    path = tmp_path / "jpeg.mcap"
    rec = FlightRecorder(path, frame_every=1)
    rec.start({})
    ramp = np.zeros((64, 64, 3), dtype=np.uint8)
    ramp[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :]
    ramp[..., 2] = 40
    rec.put_cycle(1.0, _cycle(1, step=1), None, ramp)
    rec.close({})
    [(t, image)] = list(iter_frames(path))
    assert t == 1.0 and image.shape == ramp.shape
    assert np.abs(image.astype(int) - ramp.astype(int)).mean() < 3.0


def test_frames_only_on_every_nth_cycle_and_frame_due_says_which(tmp_path: Path) -> None:
    rec = FlightRecorder(tmp_path / "f.mcap", frame_every=4)
    rec.start({}, t=0.0)
    due = []
    for k in range(10):
        due.append(rec.frame_due())
        # A due cycle without a frame (a hold) simply records none.
        rec.put_cycle(0.1 * k, _cycle(k, step=k), None, None if k == 4 else _frame(k))
    rec.close({})
    assert due == [k % 4 == 0 for k in range(10)]
    assert read_record(tmp_path / "f.mcap").frames == 2  # cycles 0 and 8
    assert FlightRecorder(tmp_path / "off.mcap").frame_due() is False


def test_non_finite_numbers_are_valid_json_and_come_back(tmp_path: Path) -> None:
    path = tmp_path / "nan.mcap"
    rec = FlightRecorder(path)
    rec.start({})
    action = np.array([0.1, np.nan, 0.2, np.inf, -np.inf, 0, 0, 1], dtype=np.float32)
    rec.put_cycle(0.5, _cycle(0, action=action, stages_ms={"segmenter": float("nan")}), None)
    rec.put_event(0.6, "fault", episode=0, value=float("-inf"))
    rec.close({})

    [(_, _, message)] = [r for r in _raw(path) if r[0] == CYCLE_TOPIC]
    plain = json.loads(message.data)  # strict JSON: no NaN literals anywhere
    assert plain["action"][1] is None and plain["action"][3] is None
    json.dumps(plain, allow_nan=False)

    record = read_record(path)
    back = record.cycles[0]["action"]
    assert math.isnan(back[1]) and back[3] == math.inf and back[4] == -math.inf
    assert [back[i] for i in (0, 2, 5, 6, 7)] == [float(action[i]) for i in (0, 2, 5, 6, 7)]
    assert math.isnan(record.cycles[0]["stages_ms"]["segmenter"])
    assert record.events[0]["detail"]["value"] == -math.inf


def test_encode_and_decode_message_are_inverse() -> None:
    message = {"a": [1.5, float("nan")], "b": {"c": (np.float32(2.5), np.int16(-3))}, "d": "x"}
    back = decode_message(encode_message(message))
    assert back["a"][0] == 1.5 and math.isnan(back["a"][1])
    assert back["b"] == {"c": [2.5, -3]} and back["d"] == "x"


# ---- schemas ---------------------------------------------------------------------------

_JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def _check_schema_node(node: dict[str, Any], where: str) -> None:
    types = node.get("type")
    if types is not None:
        listed = types if isinstance(types, list) else [types]
        assert listed and set(listed) <= _JSON_TYPES, f"{where}: bad type {types!r}"
    props = node.get("properties", {})
    assert isinstance(props, dict), where
    for name, sub in props.items():
        _check_schema_node(sub, f"{where}.{name}")
    assert set(node.get("required", [])) <= set(props), f"{where}: required not in properties"
    if isinstance(node.get("items"), dict):
        _check_schema_node(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), dict):
        _check_schema_node(node["additionalProperties"], f"{where}{{}}")


def test_every_topic_has_a_json_schema_and_every_message_follows_it(tmp_path: Path) -> None:
    path = tmp_path / "schemas.mcap"
    rec = _record_run(path, 6, frame_every=2)
    assert rec.failure is None
    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    by_topic = {c.topic: c for c in summary.channels.values()}
    assert set(by_topic) == {spec.topic for spec in TOPICS}
    for spec in TOPICS:
        channel = by_topic[spec.topic]
        assert channel.message_encoding == "json"
        schema = summary.schemas[channel.schema_id]
        assert schema.encoding == "jsonschema" and schema.name == spec.schema_name
        parsed = json.loads(schema.data)
        assert parsed == spec.schema
        assert parsed["type"] == "object" and parsed["properties"]
        _check_schema_node(parsed, spec.schema_name)
    # Foxglove finds its image panels by these exact names.
    assert by_topic[MASK_TOPIC].schema_id and summary.schemas[
        by_topic[MASK_TOPIC].schema_id
    ].name == ("foxglove.RawImage")
    assert summary.schemas[by_topic[FRAME_TOPIC].schema_id].name == "foxglove.CompressedImage"

    schemas = {spec.topic: spec.schema for spec in TOPICS}
    seen = set()
    for topic, _, message in _raw(path):
        seen.add(topic)
        assert schema_errors(json.loads(message.data), schemas[topic], topic) == []
    assert seen == {RUN_TOPIC, CYCLE_TOPIC, MASK_TOPIC, FRAME_TOPIC, EVENT_TOPIC, SUMMARY_TOPIC}
    # A cycle with non-finite numbers still follows the file's schema (nulls plus the list)
    nan = float("nan")
    rec_nan = _cycle(0, action=np.full(8, nan), gripper=nan, due=math.inf)
    raw_nan = json.loads(encode_message(rec_nan.to_json()))
    assert raw_nan["gripper"] is None
    assert schema_errors(raw_nan, schemas[CYCLE_TOPIC], "nan cycle") == []
    # ... and the schema is strict enough to refuse what the cycle must not be.
    assert schema_errors({**raw_nan, "woke": 1.0}, schemas[CYCLE_TOPIC])
    assert schema_errors({**raw_nan, "q": [0.0] * 6}, schemas[CYCLE_TOPIC])


def test_mask_image_fields_are_what_foxglove_reads(tmp_path: Path) -> None:
    path = tmp_path / "m.mcap"
    _record_run(path, 2)
    masks = [(t, m) for topic, t, m in _raw(path) if topic == MASK_TOPIC]
    assert len(masks) == 2
    for log_time, message in masks:
        image = json.loads(message.data)
        assert image["encoding"] == "mono8" and image["width"] == image["height"] == 100
        assert image["step"] == 100
        assert image["timestamp"]["sec"] * 10**9 + image["timestamp"]["nsec"] == log_time


# ---- masks -----------------------------------------------------------------------------


def test_mask_to_mono8_for_each_kind_of_mask() -> None:
    p = np.array([[0.0, 0.5], [1.0, 0.2]], dtype=np.float32)
    np.testing.assert_array_equal(mask_to_mono8(p), [[0, 128], [255, 51]])
    np.testing.assert_array_equal(mask_to_mono8(p[None, None]), mask_to_mono8(p))
    np.testing.assert_array_equal(mask_to_mono8(p > 0.3), [[0, 255], [255, 0]])
    grey = np.array([[3, 200]], dtype=np.uint8)
    np.testing.assert_array_equal(mask_to_mono8(grey), grey)
    np.testing.assert_array_equal(mask_to_mono8(np.array([[np.nan, 2.0, -1.0]])), [[0, 255, 0]])
    with pytest.raises(ValueError, match="2-D"):
        mask_to_mono8(np.zeros((2, 3, 4)))


def test_masks_of_every_kind_line_up_with_their_cycles(tmp_path: Path) -> None:
    path = tmp_path / "masks.mcap"
    grey = np.arange(10000, dtype=np.int64).reshape(100, 100) % 256
    masks: list[np.ndarray | None] = [
        _mask(1),
        grey.astype(np.uint8),
        _mask(2) > 0.5,
        None,
        _mask(3)[None, None],
    ]
    rec = FlightRecorder(path)
    rec.start({})
    for k, m in enumerate(masks):
        rec.put_cycle(float(k), _cycle(k, step=k), m)
    rec.close({})
    record = read_record(path)
    assert [c["step"] for c in record.cycles] == list(range(5))
    expected = [
        (_mask(1) * 255).astype(np.uint8),
        grey.astype(np.uint8),
        (_mask(2) * 255).astype(np.uint8),
        None,
        (_mask(3) * 255).astype(np.uint8),
    ]
    for got, want in zip(record.masks, expected, strict=True):
        if want is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, want)


def test_a_record_that_cannot_be_encoded_is_counted_and_the_rest_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.mcap"
    rec = FlightRecorder(path, frame_every=1)
    rec.start({})
    assert rec.put_cycle(0.0, _cycle(0, step=0), np.zeros((3, 4, 5)))  # accepted: encoded later
    assert rec.put_cycle(0.1, _cycle(1, step=1), None, np.zeros((4, 4, 3), np.float32))
    assert rec.put_cycle(0.2, _cycle(2, step=2), _mask(0))
    assert rec.put_cycle(0.3, _cycle(3, step=3, q=np.zeros(6)), None)  # to_json refuses it
    assert rec.put_cycle(0.4, _cycle(4, step=4, limited=None, reason=7), None)
    rec.close({})
    assert rec.bad_records == 4 and rec.dropped == 4 and rec.written == 1
    record = read_record(path)
    assert [c["step"] for c in record.cycles] == [2]
    assert record.summary is not None and record.summary["recorder"]["bad_records"] == 4


# ---- the loop's side never waits -------------------------------------------------------


def test_full_queue_drops_and_counts_but_keeps_room_for_events(tmp_path: Path) -> None:
    path = tmp_path / "full.mcap"
    rec = GatedRecorder(path, queue_size=8)  # 6 places for cycles, 2 kept for events
    rec.start({}, t=0.0)
    assert rec.put_cycle(0.0, _cycle(0, step=0), None)
    assert rec.entered.wait(WAIT_S)  # the writer holds cycle 0 and is stuck at the gate
    accepted = [rec.put_cycle(0.1 * k, _cycle(k, step=k), _mask(k)) for k in range(1, 21)]
    assert accepted == [True] * 6 + [False] * 14
    assert rec.dropped == 14
    events = [rec.put_event(2.0 + k, "hold", episode=0, n=k) for k in range(3)]
    assert events == [True, True, False]
    assert rec.dropped == 15

    rec.gate.set()
    rec.close({"cycles": 21})
    assert rec.failure is None and rec.written == 9
    record = read_record(path)
    assert [c["step"] for c in record.cycles] == list(range(7))
    assert [e["detail"]["n"] for e in record.events] == [0, 1]
    assert record.summary is not None
    counts = record.summary["recorder"]
    assert counts["dropped"] == 15 and counts["dropped_queue_full"] == 15
    assert counts["written"] == 9 and counts["cycles_put"] == 21 and counts["events_put"] == 3
    assert record.dropped == 15


def test_put_cycle_leaves_all_encoding_to_the_writer_thread(tmp_path: Path) -> None:
    calls: list[str] = []

    class Probe:
        def __float__(self) -> float:
            calls.append(threading.current_thread().name)
            return 0.25

    rec = GatedRecorder(tmp_path / "probe.mcap")
    rec.start({})
    assert rec.put_cycle(0.0, _cycle(0, gripper=Probe()), _mask(0))
    assert rec.entered.wait(WAIT_S)
    assert calls == []  # put_cycle returned without turning anything into JSON
    rec.gate.set()
    rec.close({})
    assert calls == ["flight-recorder"]
    assert read_record(tmp_path / "probe.mcap").cycles == [_as_json(_cycle(0, gripper=0.25))]


def test_puts_outside_start_and_close_are_refused_and_counted(tmp_path: Path) -> None:
    rec = FlightRecorder(tmp_path / "r.mcap")
    assert rec.put_cycle(0.0, _cycle(0), None) is False
    assert rec.put_event(0.0, "early") is False
    rec.start({})
    rec.close({})
    assert rec.put_cycle(1.0, _cycle(1), None) is False
    assert rec.dropped == 3 and rec.written == 0


# ---- closing ---------------------------------------------------------------------------


def test_close_is_idempotent_and_the_file_is_finished(tmp_path: Path) -> None:
    path = tmp_path / "twice.mcap"
    rec = _record_run(path, 3)
    rec.close({"again": True})
    rec.close({"again": True})
    assert rec.join(0)
    raw = _raw(path)
    assert [topic for topic, _, _ in raw].count(SUMMARY_TOPIC) == 1
    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None and summary.statistics is not None
    assert summary.statistics.message_count == len(raw)
    assert summary.chunk_indexes
    record = read_record(path)
    assert record.complete and record.summary is not None and "again" not in record.summary


def test_close_without_start_and_an_empty_run(tmp_path: Path) -> None:
    FlightRecorder(tmp_path / "never.mcap").close({})
    assert not (tmp_path / "never.mcap").exists()

    path = tmp_path / "empty.mcap"
    rec = FlightRecorder(path)
    rec.start({"config": {"x": 1}})
    rec.close({"episodes": 0}, t=12.5)
    record = read_record(path)
    assert record.complete and record.cycles == [] and record.events == []
    assert record.run is not None and record.run["config"] == {"x": 1}
    assert record.summary is not None and record.summary["episodes"] == 0
    times = {topic: t for topic, t, _ in _raw(path)}
    assert times == {RUN_TOPIC: 12_500_000_000, SUMMARY_TOPIC: 12_500_000_000}


def test_run_message_takes_the_first_record_time_without_a_start_time(tmp_path: Path) -> None:
    path = tmp_path / "t.mcap"
    rec = FlightRecorder(path)
    rec.start({})
    rec.put_cycle(1234.5, _cycle(1, step=1), None)
    rec.put_cycle(1234.6, _cycle(2, step=2), None)
    rec.close({})
    raw = _raw(path)
    assert raw[0][0] == RUN_TOPIC and raw[0][1] == 1_234_500_000_000
    assert raw[-1][0] == SUMMARY_TOPIC and raw[-1][1] == 1_234_600_000_000
    assert read_record(path).run["clock_start"] == 1234.5  # type: ignore[index]


def test_close_gives_up_waiting_on_a_stuck_writer_and_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "stuck.mcap"
    rec = GatedRecorder(path, close_timeout_s=0.05)
    rec.start({})
    rec.put_cycle(0.0, _cycle(0, step=0), None)
    assert rec.entered.wait(WAIT_S)
    rec.close({"cycles": 1})  # returns although the writer is still stuck
    assert rec.failure is not None and "still busy" in rec.failure
    assert not rec.join(0)

    rec.gate.set()  # the disk recovers: the writer finishes the file on its own
    assert rec.join(WAIT_S)
    record = read_record(path)
    assert record.complete and [c["step"] for c in record.cycles] == [0]
    assert record.summary is not None
    assert "still busy" in record.summary["recorder"]["failure"]


# ---- bad paths and bad disks -----------------------------------------------------------


def _one_line(err: pytest.ExceptionInfo[ConfigError], *words: str) -> None:
    text = str(err.value)
    assert "\n" not in text and err.value.exit_code == 2
    for word in words:
        assert word in text


def test_bad_paths_raise_config_error_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir" / "run.mcap"
    with pytest.raises(ConfigError) as err:
        FlightRecorder(missing).start({})
    _one_line(err, str(missing), "No such file or directory")

    (tmp_path / "plain_file").write_text("x")
    under_file = tmp_path / "plain_file" / "run.mcap"
    with pytest.raises(ConfigError) as err:
        FlightRecorder(under_file).start({})
    _one_line(err, str(under_file), "Not a directory")

    with pytest.raises(ConfigError) as err:
        FlightRecorder(tmp_path).start({})
    _one_line(err, "is a directory")

    old = tmp_path / "old.mcap"
    old.write_bytes(b"an earlier run")
    with pytest.raises(ConfigError) as err:
        FlightRecorder(old).start({})
    _one_line(err, str(old), "already exists")
    assert old.read_bytes() == b"an earlier run"

    with pytest.raises(ConfigError, match="queue_size"):
        FlightRecorder(tmp_path / "q.mcap", queue_size=0)
    with pytest.raises(ConfigError, match="frame_every"):
        FlightRecorder(tmp_path / "q.mcap", frame_every=-1)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_at_start_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        FlightRecorder("/dev/full", overwrite=True).start({})
    _one_line(err, "/dev/full", "No space left on device")


# What the scripts below record: a hold cycle, the smallest a loop writes.
_SCRIPT_CYCLE = r"""
from grasprt.runtime.cycle_record import CycleRecord

def cycle(k, q=None):
    return CycleRecord(
        episode=0, step=k, slot=k, due=0.1 * k, lateness_ms=0.0, missed=0, frame_stamp=None,
        frame_age_ms=None, q=np.zeros(7) if q is None else q, gripper=0.0, object_held=None,
        action=None, requested=None, command=None, gripper_closed=None, limiter_status=None,
        limited=None, verdict="hold", reason="no frame yet", mask_area=None,
        photon_to_command_ms=None, stages_ms={},
    )
"""

_DISK_FILLS = (
    r"""
import json, resource, signal, sys
import numpy as np
from grasprt.runtime.recorder import FlightRecorder
"""
    + _SCRIPT_CYCLE
    + r"""

path = sys.argv[1]
rng = np.random.default_rng(7)
rec = FlightRecorder(path, queue_size=1000, chunk_size=4096)
rec.start({"config": {}}, t=0.0)
# From here on the file may not grow past 200 kB: the next write fails with EFBIG.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
for k in range(300):
    rec.put_cycle(0.1 * k, cycle(k), rng.random((100, 100)) > 0.5)
while rec.failure is None and rec.written < 300:
    rec.join(0.01)
later = [rec.put_cycle(40.0 + k, cycle(300 + k), None) for k in range(5)]
rec.close({"cycles": 305})
print(json.dumps({"failure": rec.failure, "dropped": rec.dropped, "written": rec.written,
                  "later": later, "joined": rec.join(30)}))
"""
)


def test_disk_error_mid_run_marks_the_recorder_failed_and_the_loop_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fills.mcap"
    done = subprocess.run(
        [sys.executable, "-c", _DISK_FILLS, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["failure"] is not None and "File too large" in out["failure"]
    assert out["later"] == [False] * 5  # a failed recorder refuses, counts, and never raises
    assert out["joined"]
    assert out["written"] + out["dropped"] == 305
    assert 0 < out["written"] < 300

    record = read_record(path)  # what made it to disk before the error is readable
    assert not record.complete and record.summary is None
    assert out["written"] <= len(record.cycles) <= out["written"] + 1
    assert [c["step"] for c in record.cycles] == list(range(len(record.cycles)))


# ---- files cut short -------------------------------------------------------------------

_KILLED = (
    r"""
import os, signal, sys
import numpy as np
from grasprt.runtime.recorder import FlightRecorder
"""
    + _SCRIPT_CYCLE
    + r"""

path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(3)
rec = FlightRecorder(path, chunk_size=4096, flush_interval_s=3600.0)
rec.start({"config": {"n": n}}, t=0.0)
for k in range(n):
    rec.put_cycle(0.1 * k, cycle(k, rng.normal(size=7)), rng.random((100, 100)) > 0.5)
while rec.written < n:
    if rec.failure:
        sys.exit(3)
    rec.join(0.01)
os.kill(os.getpid(), signal.SIGKILL)
"""
)


def test_a_killed_process_leaves_every_finished_chunk_readable(tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    n = 25
    done = subprocess.run(
        [sys.executable, "-c", _KILLED, str(path), str(n)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not path.read_bytes().endswith(MAGIC)  # no footer: the writer never finished

    record = read_record(path)
    assert not record.complete and record.damage
    assert record.summary is None
    assert record.run is not None and record.run["config"] == {"n": n}
    rng = np.random.default_rng(3)
    assert len(record.cycles) == n  # each mask filled a chunk, and each chunk hit the disk
    for k, (cycle, mask) in enumerate(zip(record.cycles, record.masks, strict=True)):
        q = rng.normal(size=7)
        want = rng.random((100, 100)) > 0.5
        assert cycle["step"] == k and cycle["q"] == q.tolist()
        assert mask is not None
        np.testing.assert_array_equal(mask, want.astype(np.uint8) * 255)

    # A repaired copy is a finished, indexed MCAP with the same content.
    fixed = tmp_path / "repaired.mcap"
    assert repair_record(path, fixed) == 1 + 2 * n  # run, then a cycle and a mask each
    with open(fixed, "rb") as f:
        summary = make_reader(f, validate_crcs=True).get_summary()
    assert summary is not None and summary.chunk_indexes
    again = read_record(fixed)
    assert again.complete and again.damage is None
    assert again.cycles == record.cycles and again.run == record.run
    for a, b in zip(again.masks, record.masks, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="cannot create"):
        repair_record(path, fixed)  # never overwrites


def test_a_file_cut_anywhere_reads_as_a_prefix_of_the_run(tmp_path: Path) -> None:
    path = tmp_path / "whole.mcap"
    n = 20
    _record_run(path, n, chunk_size=4096)
    data = path.read_bytes()
    expected = [_as_json(_cycle(k)) for k in range(n)]
    cut_path = tmp_path / "cut.mcap"
    counts = []
    for cut in np.linspace(len(MAGIC), len(data) - 1, 60).astype(int):
        cut_path.write_bytes(data[:cut])
        record: Record = read_record(cut_path)
        assert not record.complete and record.damage
        m = len(record.cycles)
        assert record.cycles == expected[:m]
        for k, mask in enumerate(record.masks[: m - 1]):  # the last one may lose its mask
            np.testing.assert_array_equal(mask, (_mask(k) * 255).astype(np.uint8))
        counts.append(m)
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == n


def test_reader_refuses_what_is_not_a_record(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        read_record(tmp_path / "absent.mcap")
    _one_line(err, "absent.mcap")
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"PK\x03\x04 not an mcap at all")
    with pytest.raises(ConfigError) as err:
        read_record(junk)
    _one_line(err, "not an MCAP file")
