"""CycleRecord, the /grasprt/cycle schema made from it, and real runs' records against it."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcap.reader import make_reader
from test_recorder import schema_errors

from grasprt.bundle import N_JOINTS, STATE_SIZE, load_bundle
from grasprt.config import build_run_config
from grasprt.drivers.registry import build_drivers
from grasprt.drivers.sim.config import FaultConfig, SimConfig
from grasprt.drivers.sim.kind import sim_drivers
from grasprt.runtime.cycle_record import (
    FIELDS,
    VERDICTS,
    CycleRecord,
    cycle_schema,
    field_table,
)
from grasprt.runtime.record_reader import Record, read_record
from grasprt.runtime.record_schema import (
    CYCLE_SCHEMA,
    CYCLE_TOPIC,
    NONFINITE_KEY,
    RUN_SCHEMA,
    TOPICS,
    decode_message,
    encode_message,
)
from grasprt.runtime.runner import Run

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = REPO / "models" / "placeholder"

# ---- the record and its schema ---------------------------------------------------------


def make_record(**changes: Any) -> CycleRecord:
    """An ok cycle with numpy values where the loop has them."""
    rng = np.random.default_rng(5)
    values: dict[str, Any] = {
        "episode": 1,
        "step": 4,
        "slot": np.int64(3),
        "due": 0.3,
        "lateness_ms": 0.25,
        "missed": 0,
        "frame_stamp": 0.29,
        "frame_age_ms": np.float64(11.5),
        "q": rng.normal(size=N_JOINTS),
        "gripper": np.float32(0.25),
        "object_held": np.False_,
        "action": rng.uniform(-1, 1, size=STATE_SIZE).astype(np.float32),
        "requested": rng.normal(size=N_JOINTS),
        "command": rng.normal(size=N_JOINTS),
        "gripper_closed": False,
        "limiter_status": np.int64(6),
        "limited": True,
        "verdict": "ok",
        "reason": None,
        "mask_area": 412.0,
        "photon_to_command_ms": 19.5,
        "stages_ms": {"segmenter": 7.5, "controller": np.float32(0.5)},
    }
    values.update(changes)
    return CycleRecord(**values)


def _hold_record() -> CycleRecord:
    nothing = dict.fromkeys(
        (
            "action",
            "requested",
            "command",
            "gripper_closed",
            "limiter_status",
            "limited",
            "photon_to_command_ms",
        )
    )
    return make_record(**nothing, verdict="hold", reason="frame 0.31 s old", mask_area=None)


def test_the_schema_requires_exactly_the_fields_of_the_record() -> None:
    names = [f.name for f in dataclasses.fields(CycleRecord)]
    schema = cycle_schema()
    assert list(FIELDS) == names
    assert schema["required"] == names
    assert list(schema["properties"]) == names
    assert schema["additionalProperties"] is False
    assert schema["$schema"] == RUN_SCHEMA["$schema"]  # the draft the other topics declare
    assert schema["title"] == "grasprt.Cycle"
    for name, node in schema["properties"].items():
        assert node["description"], name


def test_vector_sizes_come_from_the_bundle_contract() -> None:
    props = cycle_schema()["properties"]
    for name in ("q", "requested", "command"):
        assert (props[name]["minItems"], props[name]["maxItems"]) == (N_JOINTS, N_JOINTS)
    assert (props["action"]["minItems"], props["action"]["maxItems"]) == (STATE_SIZE,) * 2
    arrays = {name for name, node in props.items() if "array" in str(node["type"])}
    assert arrays == {"q", "action", "requested", "command"}


def _optional(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def test_exactly_the_optional_fields_are_nullable() -> None:
    hints = typing.get_type_hints(CycleRecord)
    props = cycle_schema()["properties"]
    nullable = {name for name, node in props.items() if "null" in node["type"]}
    assert nullable == {name for name in FIELDS if _optional(hints[name])}
    assert nullable == {
        "frame_stamp",
        "frame_age_ms",
        "object_held",
        "action",
        "requested",
        "command",
        "gripper_closed",
        "limiter_status",
        "limited",
        "reason",
        "mask_area",
        "photon_to_command_ms",
    }
    assert props["verdict"] == {
        "type": "string",
        "enum": ["ok", "hold", "stop"],
        "description": props["verdict"]["description"],
    }
    assert props["stages_ms"]["additionalProperties"] == {"type": "number"}


def test_to_json_gives_plain_python_values_that_follow_the_schema() -> None:
    rec = make_record()
    out = rec.to_json()
    assert list(out) == list(FIELDS)
    assert schema_errors(out, cycle_schema()) == []
    assert type(out["slot"]) is int and type(out["limiter_status"]) is int
    assert type(out["gripper"]) is float and out["gripper"] == 0.25
    assert type(out["object_held"]) is bool and out["object_held"] is False
    assert type(out["frame_age_ms"]) is float
    assert type(out["q"]) is list and all(type(x) is float for x in out["q"])
    assert out["action"] == rec.action.tolist()  # float32 values, exactly
    assert out["stages_ms"] == {"segmenter": 7.5, "controller": 0.5}
    assert type(out["stages_ms"]["controller"]) is float
    json.dumps(out, allow_nan=False)
    hold = _hold_record().to_json()
    assert schema_errors(hold, cycle_schema()) == []
    assert hold["action"] is None and hold["verdict"] == "hold"


def test_a_message_with_a_field_missing_or_extra_fails_the_schema() -> None:
    out = make_record().to_json()
    for name in FIELDS:
        without = {k: v for k, v in out.items() if k != name}
        assert schema_errors(without, cycle_schema()) == [f"$: missing {name}"]
    assert schema_errors({**out, "cycle_ms": 3.0}, cycle_schema()) == [
        "$: unexpected field cycle_ms"
    ]
    assert schema_errors({**out, "verdict": "fault"}, cycle_schema())
    assert schema_errors({**out, "q": out["q"][:6]}, cycle_schema())
    assert schema_errors({**out, "due": None}, cycle_schema())  # only optional ones are


def test_a_record_with_a_field_missing_or_extra_cannot_be_built() -> None:
    values = {f.name: getattr(make_record(), f.name) for f in dataclasses.fields(CycleRecord)}
    with pytest.raises(TypeError, match="woke"):
        CycleRecord(**values, woke=0.3)
    del values["mask_area"]
    with pytest.raises(TypeError, match="mask_area"):
        CycleRecord(**values)


@pytest.mark.parametrize("word", ["fault", "OK", "", None])
def test_a_verdict_outside_ok_hold_stop_is_refused(word: Any) -> None:
    assert VERDICTS == ("ok", "hold", "stop")
    with pytest.raises(ValueError, match="verdict"):
        make_record(verdict=word)
    make_record(verdict="stop", reason="limiter: non-finite action")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"q": np.zeros(N_JOINTS - 1)}, ValueError),
        ({"action": np.zeros((1, STATE_SIZE))}, ValueError),
        ({"command": "0000000"}, TypeError),
        ({"requested": [0.0] * 6 + [None]}, TypeError),
        ({"q": np.zeros(N_JOINTS, dtype=bool)}, TypeError),
        ({"gripper": None}, TypeError),
        ({"gripper": "0.5"}, TypeError),
        ({"step": 2.0}, TypeError),
        ({"limiter_status": True}, TypeError),
        ({"limited": 1}, TypeError),
        ({"reason": 3}, TypeError),
        ({"stages_ms": {"segmenter": "slow"}}, TypeError),
        ({"stages_ms": {3: 1.0}}, TypeError),
        ({"due": "0.3"}, TypeError),
        ({"stages_ms": [1.0]}, TypeError),
    ],
)
def test_to_json_refuses_a_value_of_the_wrong_type_or_size(
    change: dict[str, Any], error: type[Exception]
) -> None:
    (name,) = change
    with pytest.raises(error, match=f"CycleRecord.{name}"):
        make_record(**change).to_json()


def test_non_finite_numbers_fit_the_file_schema_and_come_back() -> None:
    nan = float("nan")
    rec = make_record(gripper=nan, q=np.full(N_JOINTS, np.inf), stages_ms={"segmenter": nan})
    raw = json.loads(encode_message(rec.to_json()))
    assert raw["gripper"] is None and raw[NONFINITE_KEY]
    # In the file a non-finite float is null, which the file's schema allows ...
    assert schema_errors(raw, CYCLE_SCHEMA) == []
    assert schema_errors(raw, cycle_schema())  # ... and the read-back schema does not
    back = decode_message(encode_message(rec.to_json()))
    assert schema_errors(back, cycle_schema()) == []
    assert math.isnan(back["gripper"]) and back["q"] == [math.inf] * N_JOINTS


def test_the_file_schema_is_the_generated_one_with_nulls_for_non_finite_numbers() -> None:
    [spec] = [s for s in TOPICS if s.topic == CYCLE_TOPIC]
    assert spec.schema is CYCLE_SCHEMA and spec.schema_name == "grasprt.Cycle"
    strict = cycle_schema()
    assert CYCLE_SCHEMA["required"] == strict["required"]
    assert set(CYCLE_SCHEMA["properties"]) == {*strict["properties"], NONFINITE_KEY}
    props = CYCLE_SCHEMA["properties"]
    assert props["due"]["type"] == ["number", "null"]
    assert props["q"]["type"] == "array" and props["q"]["items"]["type"] == ["number", "null"]
    assert props["step"]["type"] == "integer" and props["verdict"]["type"] == "string"


def test_from_json_gives_the_record_back_and_refuses_wrong_keys() -> None:
    out = make_record().to_json()
    assert CycleRecord.from_json(out).to_json() == out
    with pytest.raises(TypeError):
        CycleRecord.from_json({**out, "cycle": 3})
    with pytest.raises(TypeError):
        CycleRecord.from_json({k: v for k, v in out.items() if k != "q"})


def test_docs_list_every_field_as_the_dataclass_has_it() -> None:
    text = (REPO / "docs" / "recording.md").read_text()
    block = re.search(r"<!-- cycle-fields -->\n(.*?)<!-- /cycle-fields -->", text, re.S)
    assert block is not None, "docs/recording.md lost its <!-- cycle-fields --> block"
    assert block.group(1) == field_table(), (
        "docs/recording.md is out of date: paste in the output of python -c "
        "'from grasprt.runtime.cycle_record import field_table; print(field_table())'"
    )
    for name in FIELDS:
        assert f"| `{name}` |" in block.group(1)


# ---- real runs -------------------------------------------------------------------------


def _run(path: Path, faults: FaultConfig | None = None, **flags: Any) -> Record:
    cfg = build_run_config(
        None,
        {
            "robot": "sim",
            "clock": "sim",
            "episodes": 2,
            "max_steps": 20,
            "record": str(path),
            "bundle": str(PLACEHOLDER),
            **flags,
        },
    )
    if faults is None:
        run = Run(cfg, make_drivers=build_drivers)
    else:
        drivers = sim_drivers(cfg, load_bundle(cfg.bundle), SimConfig(faults=faults))
        run = Run(cfg, drivers=drivers)
    run.execute()
    return read_record(path)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Record:
    return _run(tmp_path_factory.mktemp("healthy") / "r.mcap")


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Record:
    # Frames stop after 1 s: the loop holds on a stale frame, then stops the episode.
    path = tmp_path_factory.mktemp("frozen") / "r.mcap"
    return _run(path, FaultConfig(camera_freeze_after_s=1.0), episodes=1, max_steps=60)


def _raw_cycles(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        return [
            json.loads(message.data)
            for _, channel, message in make_reader(f).iter_messages()
            if channel.topic == CYCLE_TOPIC
        ]


def _check_run(record: Record) -> None:
    assert record.complete and record.dropped == 0
    for i, cycle in enumerate(record.cycles):
        assert schema_errors(cycle, cycle_schema(), f"cycle {i}") == []
        assert CycleRecord.from_json(cycle).to_json() == cycle
    raw = _raw_cycles(record.path)
    assert len(raw) == len(record.cycles)
    for i, cycle in enumerate(raw):
        assert schema_errors(cycle, CYCLE_SCHEMA, f"raw cycle {i}") == []


def test_every_cycle_of_a_real_run_follows_the_schema(healthy: Record) -> None:
    assert len(healthy.cycles) == 40  # 2 episodes x 20 steps
    _check_run(healthy)
    assert {c["verdict"] for c in healthy.cycles} == {"ok"}
    assert [c["step"] for c in healthy.cycles] == list(range(1, 21)) * 2


def test_every_cycle_of_a_run_with_holds_follows_the_schema(frozen: Record) -> None:
    _check_run(frozen)
    verdicts = [c["verdict"] for c in frozen.cycles]
    assert "ok" in verdicts and "hold" in verdicts
    for cycle in frozen.cycles:
        if cycle["verdict"] == "hold":
            assert cycle["reason"] and cycle["action"] is None and cycle["command"] is None
            assert len(cycle["q"]) == N_JOINTS
