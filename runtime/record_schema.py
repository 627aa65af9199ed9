"""Topics and JSON Schemas of a grasprt flight record (an MCAP file).

Every message is JSON (``message_encoding="json"``) with a JSON Schema
(``schema encoding="jsonschema"``), so Foxglove Studio can open a record with no
plugin: the two image topics use Foxglove's own schema names (``foxglove.RawImage``,
``foxglove.CompressedImage``), which is what makes its Image panel show them.

JSON has no NaN or infinity, yet a recorded fault is often exactly such a number. The
recorder writes ``null`` in its place (so the message stays valid JSON for any tool)
and lists where it was, and what it was, under :data:`NONFINITE_KEY`; the reader puts
the value back.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grasprt.runtime.cycle_record import SCHEMA_TITLE as CYCLE_SCHEMA_NAME
from grasprt.runtime.cycle_record import cycle_schema

RUN_TOPIC = "/grasprt/run"
CYCLE_TOPIC = "/grasprt/cycle"
MASK_TOPIC = "/grasprt/mask"
FRAME_TOPIC = "/grasprt/frame"
EVENT_TOPIC = "/grasprt/event"
SUMMARY_TOPIC = "/grasprt/summary"
# The arm's frames from forward kinematics (Foxglove's 3D panel), the model's input
# image (when a frame is), and a shadow bundle's would-be decision (--shadow).
TF_TOPIC = "/grasprt/tf"
MODEL_VIEW_TOPIC = "/grasprt/model_view"
SHADOW_TOPIC = "/grasprt/shadow"
CAMERA_INFO_TOPIC = "/grasprt/camera_info"

# Where a message records the non-finite floats the recorder replaced with null:
# a list of [path, value] with path a list of keys and indices, value "nan", "inf" or "-inf".
NONFINITE_KEY = "_nonfinite"

# Bumped when a topic's meaning changes, so a reader can tell old records apart.
RECORD_FORMAT = 1

MASK_FRAME_ID = "grasprt_mask"
CAMERA_FRAME_ID = "wrist_camera_optical"
MODEL_VIEW_FRAME_ID = "grasprt_model_view"
BASE_FRAME_ID = "base"

_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": ["string", "null"]}


def _described(base: dict[str, Any], what: str) -> dict[str, Any]:
    return {**base, "description": what}


_NONFINITE = {
    "type": "array",
    "description": "non-finite floats written as null: [path, 'nan' | 'inf' | '-inf']",
    "items": {"type": "array", "minItems": 2, "maxItems": 2},
}

_TIME = {
    "type": "object",
    "title": "time",
    "properties": {
        "sec": {"type": "integer", "minimum": 0},
        "nsec": {"type": "integer", "minimum": 0, "maximum": 999999999},
    },
}

RUN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "grasprt.Run",
    "description": "Once per record, before anything else: what ran, where and when.",
    "type": "object",
    "properties": {
        "record_format": {"type": "integer", "description": "version of this record layout"},
        "grasprt_version": {"type": "string"},
        "config": {"type": ["object", "null"], "description": "the run's validated config"},
        "bundle": {"type": ["object", "null"], "description": "the model bundle's manifest"},
        "mount": {
            "type": ["object", "null"],
            "description": "the camera mount used (--mount: pose, offset off the URDF's); "
            "null: the URDF's",
        },
        "host": {"type": "object", "description": "node, machine, python, pid"},
        "wall_time": _described(_NUM, "wall clock at start, seconds since the Unix epoch"),
        "wall_time_iso": _described(_STR, "the same, as ISO 8601 UTC"),
        "clock_start": _described(_NUM, "loop clock at start, seconds (the log_time base)"),
        NONFINITE_KEY: _NONFINITE,
    },
    "required": ["record_format", "grasprt_version", "host", "wall_time"],
    "additionalProperties": True,
}


def nonfinite_on_the_wire(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` for the message as :func:`encode_message` writes it.

    Wherever a number may be, null may be too (a NaN or infinity written as null), and
    the message may list those under :data:`NONFINITE_KEY`. Readers that decode with
    :func:`decode_message` get the numbers back and can check against ``schema`` itself.
    """
    out = _nullable_numbers(schema)
    out["properties"] = {**out["properties"], NONFINITE_KEY: _NONFINITE}
    return out


def _nullable_numbers(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_numbers(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_numbers(v) for k, v in node.items()}
    types = out.get("type")
    listed = types if isinstance(types, list) else [types]
    if "number" in listed and "null" not in listed:
        out["type"] = [*listed, "null"]
    return out


# Generated from the dataclass the loop fills, so it lists exactly what is written.
CYCLE_SCHEMA: dict[str, Any] = nonfinite_on_the_wire(cycle_schema())

EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "grasprt.Event",
    # Faults and stops are in episode_end's detail, holds in the cycles' verdicts.
    "description": "Something that happened once: an episode's start or end.",
    "type": "object",
    "properties": {
        "time": {"type": "number", "description": "loop clock, seconds"},
        "kind": {"type": "string", "description": "episode_start, episode_end or camera"},
        "episode": _INT,
        "detail": {
            "type": "object",
            "description": "episode_start: q, gripper (where the limiter starts); episode_end: "
            "outcome, steps, fault, limited_steps; camera: intrinsics",
        },
        NONFINITE_KEY: _NONFINITE,
    },
    "required": ["time", "kind", "episode", "detail"],
    "additionalProperties": False,
}

SUMMARY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "grasprt.Summary",
    "description": "Once, at a clean, signalled or fault stop: the run's counts.",
    "type": "object",
    "properties": {
        "recorder": {
            "type": "object",
            "description": "the recorder's own account of what it could not write",
            "properties": {
                "cycles_put": {"type": "integer"},
                "events_put": {"type": "integer"},
                "written": {"type": "integer"},
                "dropped": {"type": "integer"},
                "dropped_queue_full": {"type": "integer", "description": "writer behind"},
                "dropped_not_open": {
                    "type": "integer",
                    "description": "put before start, after close or after a failure",
                },
                "dropped_by_writer": {
                    "type": "integer",
                    "description": "queued, then lost to a failure or not encodable",
                },
                "bad_records": {"type": "integer", "description": "could not be encoded"},
                "failure": {"type": ["string", "null"]},
            },
            # The recorder writes this part itself, always whole.
            "required": [
                "cycles_put",
                "events_put",
                "written",
                "dropped",
                "dropped_queue_full",
                "dropped_not_open",
                "dropped_by_writer",
                "bad_records",
                "failure",
            ],
            "additionalProperties": False,
        },
        NONFINITE_KEY: _NONFINITE,
    },
    "required": ["recorder"],
    "additionalProperties": True,
}

RAW_IMAGE_SCHEMA: dict[str, Any] = {
    "title": "foxglove.RawImage",
    "description": "A raw image (the thresholded 100 x 100 mask, mono8, 255 = target)",
    "type": "object",
    "properties": {
        "timestamp": _TIME,
        "frame_id": {"type": "string"},
        "width": {"type": "integer", "minimum": 0},
        "height": {"type": "integer", "minimum": 0},
        "encoding": {"type": "string"},
        "step": {"type": "integer", "minimum": 0},
        "data": {"type": "string", "contentEncoding": "base64"},
    },
}

COMPRESSED_IMAGE_SCHEMA: dict[str, Any] = {
    "title": "foxglove.CompressedImage",
    "description": "A compressed image (the wrist camera frame, every Nth cycle)",
    "type": "object",
    "properties": {
        "timestamp": _TIME,
        "frame_id": {"type": "string"},
        "data": {"type": "string", "contentEncoding": "base64"},
        "format": {"type": "string"},
    },
}


_VEC3 = {
    "type": "object",
    "properties": {k: {"type": "number"} for k in "xyz"},
}
_QUAT = {
    "type": "object",
    "properties": {k: {"type": "number"} for k in "xyzw"},
}

FRAME_TRANSFORMS_SCHEMA: dict[str, Any] = {
    "title": "foxglove.FrameTransforms",
    "description": "The arm's links, hand and camera in the base frame (forward kinematics "
    "of the measured joints), one message per cycle",
    "type": "object",
    "properties": {
        "transforms": {
            "type": "array",
            "items": {
                "type": "object",
                "title": "foxglove.FrameTransform",
                "properties": {
                    "timestamp": _TIME,
                    "parent_frame_id": {"type": "string"},
                    "child_frame_id": {"type": "string"},
                    "translation": _VEC3,
                    "rotation": _QUAT,
                },
            },
        },
    },
}

CAMERA_CALIBRATION_SCHEMA: dict[str, Any] = {
    "title": "foxglove.CameraCalibration",
    "description": "The wrist camera's intrinsics (Foxglove draws its frustum)",
    "type": "object",
    "properties": {
        "timestamp": _TIME,
        "frame_id": {"type": "string"},
        "width": {"type": "integer", "minimum": 0},
        "height": {"type": "integer", "minimum": 0},
        "distortion_model": {"type": "string"},
        "D": {"type": "array", "items": {"type": "number"}},
        "K": {"type": "array", "items": {"type": "number"}, "minItems": 9, "maxItems": 9},
        "R": {"type": "array", "items": {"type": "number"}, "minItems": 9, "maxItems": 9},
        "P": {"type": "array", "items": {"type": "number"}, "minItems": 12, "maxItems": 12},
    },
}

_FLOATS = {"type": ["array", "null"], "items": {"type": ["number", "null"]}}

SHADOW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "grasprt.Shadow",
    "description": "A shadow bundle on the same model view as the live one: what it would "
    "have asked, what the limiter would have made of it, and how far it is from the live "
    "decision. Never commanded. The sequence number is the cycle's.",
    "type": "object",
    "properties": {
        "bundle": {"type": "string", "description": "the shadow bundle's directory"},
        "skipped": {
            "type": ["string", "null"],
            "description": "why it did not run this cycle (budget); null: it ran",
        },
        "cost_ms": _described(_NUM, "the shadow's own time this cycle [ms]"),
        "action": _FLOATS,
        "command": _described(_FLOATS, "the limiter's would-be joint target [rad]"),
        "limiter_status": _INT,
        "live_limiter_status": _INT,
        "verdict_changed": {"type": ["boolean", "null"]},
        "action_diff_max": _described(_NUM, "max |shadow action - live action|"),
        "command_diff_max": _described(_NUM, "max |shadow target - live target| [rad]"),
        "mask_iou": _described(_NUM, "IoU of the shadow's mask and the live mask"),
        NONFINITE_KEY: _NONFINITE,
    },
    "required": ["bundle", "skipped"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class TopicSpec:
    topic: str
    schema_name: str
    schema: dict[str, Any]

    def schema_bytes(self) -> bytes:
        return json.dumps(self.schema, sort_keys=True).encode()


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(RUN_TOPIC, "grasprt.Run", RUN_SCHEMA),
    TopicSpec(CYCLE_TOPIC, CYCLE_SCHEMA_NAME, CYCLE_SCHEMA),
    TopicSpec(MASK_TOPIC, "foxglove.RawImage", RAW_IMAGE_SCHEMA),
    TopicSpec(FRAME_TOPIC, "foxglove.CompressedImage", COMPRESSED_IMAGE_SCHEMA),
    TopicSpec(EVENT_TOPIC, "grasprt.Event", EVENT_SCHEMA),
    TopicSpec(SUMMARY_TOPIC, "grasprt.Summary", SUMMARY_SCHEMA),
    TopicSpec(TF_TOPIC, "foxglove.FrameTransforms", FRAME_TRANSFORMS_SCHEMA),
    TopicSpec(MODEL_VIEW_TOPIC, "foxglove.CompressedImage", COMPRESSED_IMAGE_SCHEMA),
    TopicSpec(SHADOW_TOPIC, "grasprt.Shadow", SHADOW_SCHEMA),
    TopicSpec(CAMERA_INFO_TOPIC, "foxglove.CameraCalibration", CAMERA_CALIBRATION_SCHEMA),
)


def nonfinite_name(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def to_json_safe(value: Any, path: list[str | int], replaced: list[list[Any]]) -> Any:
    """``value`` as plain JSON types; non-finite floats become None and go to ``replaced``.

    numpy arrays and scalars become lists and Python numbers (exactly: a float32 becomes
    the float64 of the same value). Anything unknown is written as its ``str`` rather
    than failing: a record with one odd field beats a lost record.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        replaced.append([list(path), nonfinite_name(value)])
        return None
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist(), path, replaced)
    if isinstance(value, np.generic):
        return to_json_safe(value.item(), path, replaced)
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v, [*path, str(k)], replaced) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v, [*path, i], replaced) for i, v in enumerate(value)]
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json_safe(dataclasses.asdict(value), path, replaced)
    return str(value)


def encode_message(message: Mapping[str, Any]) -> bytes:
    """One JSON message, with non-finite floats moved to :data:`NONFINITE_KEY`."""
    replaced: list[list[Any]] = []
    plain = to_json_safe(message, [], replaced)
    if replaced:
        plain[NONFINITE_KEY] = replaced
    return json.dumps(plain, allow_nan=False, separators=(",", ":")).encode()


def decode_message(data: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_message`: non-finite floats are put back."""
    message = json.loads(data)
    for path, name in message.pop(NONFINITE_KEY, []):
        if not path:
            continue
        parent: Any = message
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = float(name)
    return message
