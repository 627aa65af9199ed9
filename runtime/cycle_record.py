"""The record of one control cycle, and the JSON Schema of ``/grasprt/cycle`` made from it.

:class:`CycleRecord` is the one place the cycle topic is defined: the loop builds one
per cycle, the recorder writes :meth:`CycleRecord.to_json`, and :func:`cycle_schema`
(which the recorder puts into the file) and :func:`field_table` (which
``docs/recording.md`` carries) are generated from its fields, so none of them can drift
from what is written.

Building a record costs the loop nothing but the dataclass itself: every conversion
(numpy to JSON numbers, the checks on types and sizes) happens in :meth:`to_json`, which
the recorder calls in its writer thread.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from grasprt.bundle import N_JOINTS, STATE_SIZE

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "grasprt.Cycle"

# What the watchdog and the loop decided: the command was sent, the arm held this
# cycle, or the episode ended in a fault stop.
Verdict = Literal["ok", "hold", "stop"]
VERDICTS: tuple[str, ...] = get_args(Verdict)

# A joint or action vector as the loop has it (numpy) or as a record reads back (list).
Floats = np.ndarray | Sequence[float]


def _doc(doc: str, unit: str | None = None, size: int | None = None) -> dict[str, Any]:
    """A field's metadata: its one-line meaning, its unit, a vector's fixed length."""
    meta: dict[str, Any] = {"doc": doc}
    if unit is not None:
        meta["unit"] = unit
    if size is not None:
        meta["size"] = size
    return meta


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: numpy arrays have no plain ==
class CycleRecord:
    """One control cycle as the loop saw and decided it (``/grasprt/cycle``).

    ``None`` means "not reached this cycle": a hold has no action, a cycle without a
    frame has no frame time. Vectors are in the bundle's joint order. The arrays are
    not copied: once handed to the recorder they must not change.
    """

    episode: int = field(metadata=_doc("episode index, from 0"))
    step: int = field(metadata=_doc("steps done in the episode, this one included (holds count)"))
    slot: int = field(metadata=_doc("the loop's schedule slot k since the episode started"))
    due: float = field(metadata=_doc("when the slot was due, on the loop clock", "s"))
    lateness_ms: float = field(metadata=_doc("how late the loop woke for the slot", "ms"))
    missed: int = field(metadata=_doc("slots skipped just before this one (overruns)"))
    frame_stamp: float | None = field(
        metadata=_doc("capture time of the frame used; null: none", "s")
    )
    frame_age_ms: float | None = field(
        metadata=_doc("age of that frame when the record was made", "ms")
    )
    q: Floats = field(metadata=_doc("measured joint angles", "rad", N_JOINTS))
    gripper: float = field(metadata=_doc("measured gripper position, 0 open .. 1 closed"))
    object_held: bool | None = field(
        metadata=_doc("the gripper senses an object; null: it cannot tell")
    )
    action: Floats | None = field(
        metadata=_doc(
            "raw controller output: 7 joint steps (x action_scale: rad), then the gripper",
            size=STATE_SIZE,
        )
    )
    requested: Floats | None = field(
        metadata=_doc(
            "q + clipped action * action_scale: the target before the limiter", "rad", N_JOINTS
        )
    )
    command: Floats | None = field(
        metadata=_doc(
            "the joint target after the limiter, as sent; null: nothing sent", "rad", N_JOINTS
        )
    )
    gripper_closed: bool | None = field(
        metadata=_doc("the gripper command (after the limiter's dwell)")
    )
    limiter_status: int | None = field(
        metadata=_doc(
            "LimitStatus code (runtime/limiter.py): -1 fault, 0 untouched, > 0 the rule that acted"
        )
    )
    limited: bool | None = field(metadata=_doc("the limiter changed the request"))
    verdict: Verdict = field(
        metadata=_doc("ok: command sent; hold: arm held this cycle; stop: fault stop, episode ends")
    )
    reason: str | None = field(metadata=_doc("why the verdict is not ok; null when ok"))
    mask_area: float | None = field(
        metadata=_doc("mask pixels over the threshold, of 100 x 100", "pixels")
    )
    photon_to_command_ms: float | None = field(
        metadata=_doc(
            "the frame's capture stamp to the command handed to the driver; null: none sent",
            "ms",
        )
    )
    stages_ms: Mapping[str, float] = field(
        metadata=_doc("time in each stage reached this cycle", "ms")
    )

    def __post_init__(self) -> None:
        # The one check the loop pays for: a wrong word here would silently split the
        # record's verdicts in two.
        if self.verdict not in VERDICTS:
            raise ValueError(f"CycleRecord.verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def to_json(self) -> dict[str, Any]:
        """The message the recorder writes: plain Python numbers, lists and strings.

        A value of the wrong type or size raises TypeError or ValueError (the recorder
        counts the record as bad). Non-finite floats stay floats: the recorder's
        encoder writes them as null and lists them under ``_nonfinite``.
        """
        out: dict[str, Any] = {}
        for name, nullable, convert in _CONVERTERS:
            value = getattr(self, name)
            if value is None and nullable:
                out[name] = None
            else:
                try:
                    out[name] = convert(value)
                except (TypeError, ValueError) as e:
                    raise type(e)(f"CycleRecord.{name}: {e}") from None
        return out

    @classmethod
    def from_json(cls, message: Mapping[str, Any]) -> CycleRecord:
        """A record from a message as read back (``read_record(...).cycles[i]``).

        Exactly the fields of the record: a missing or unknown key raises TypeError.
        """
        return cls(**message)


# ---- field kinds: one table drives conversion, schema and docs -------------------------


@dataclass(frozen=True)
class _Kind:
    schema: dict[str, Any]
    convert: Callable[[Any], Any]
    nullable: bool


def _to_float(x: Any) -> float:
    # float("1.5") and float(True) would pass a wrong type silently.
    if isinstance(x, (str, bytes, bool, np.bool_)):
        raise TypeError(f"expected a number, got {type(x).__name__}")
    return float(x)


def _to_int(x: Any) -> int:
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("expected an integer, got a bool")
    return operator.index(x)


def _to_bool(x: Any) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"expected a bool, got {type(x).__name__}")
    return bool(x)


def _to_str(x: Any) -> str:
    if not isinstance(x, str):
        raise TypeError(f"expected a string, got {type(x).__name__}")
    return x


def _to_stages(x: Any) -> dict[str, float]:
    if not isinstance(x, Mapping):
        raise TypeError(f"expected a mapping, got {type(x).__name__}")
    return {_to_str(k): _to_float(v) for k, v in x.items()}


def _vector(size: int) -> Callable[[Any], list[float]]:
    def convert(x: Any) -> list[float]:
        a = np.asarray(x)
        # Not straight to float64: that would turn None into NaN and "1" into 1.0.
        if a.dtype.kind not in "fiu":
            raise TypeError(f"expected {size} numbers, got {a.dtype} values")
        if a.shape != (size,):
            raise ValueError(f"expected {size} numbers, got shape {a.shape}")
        return a.astype(np.float64).tolist()

    return convert


_SCALARS: dict[Any, tuple[str, Callable[[Any], Any]]] = {
    float: ("number", _to_float),
    int: ("integer", _to_int),
    bool: ("boolean", _to_bool),
    str: ("string", _to_str),
}


def _base_kind(
    name: str, hint: Any, meta: Mapping[str, Any]
) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    """The schema and the converter of a hint with ``None`` taken out."""
    if hint in _SCALARS:
        json_type, convert = _SCALARS[hint]
        return {"type": json_type}, convert
    if hint is Floats:
        size = meta["size"]
        node = {"type": "array", "items": {"type": "number"}, "minItems": size, "maxItems": size}
        return node, _vector(size)
    if get_origin(hint) is Literal:
        words = list(get_args(hint))
        return {"type": "string", "enum": words}, _to_str
    if get_origin(hint) is Mapping and get_args(hint) == (str, float):
        return {"type": "object", "additionalProperties": {"type": "number"}}, _to_stages
    raise TypeError(f"CycleRecord.{name}: no JSON form for the type {hint!r}")


def _kind(name: str, hint: Any, meta: Mapping[str, Any]) -> _Kind:
    args = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    rest = tuple(a for a in args if a is not type(None))
    nullable = len(rest) < len(args)
    # Floats is the only union besides "or None"; get_type_hints flattens it into args.
    base = Floats if set(rest) == set(get_args(Floats)) else rest[0]
    if base is not Floats and len(rest) != 1:
        raise TypeError(f"CycleRecord.{name}: no JSON form for the type {hint!r}")
    schema, convert = _base_kind(name, base, meta)
    if nullable:
        schema["type"] = [schema["type"], "null"]
    unit = f" [{meta['unit']}]" if "unit" in meta else ""
    schema["description"] = meta["doc"] + unit
    return _Kind(schema, convert, nullable)


def _kinds() -> dict[str, _Kind]:
    hints = get_type_hints(CycleRecord)
    return {
        f.name: _kind(f.name, hints[f.name], f.metadata) for f in dataclasses.fields(CycleRecord)
    }


_KINDS = _kinds()
_CONVERTERS = tuple((name, k.nullable, k.convert) for name, k in _KINDS.items())
FIELDS: tuple[str, ...] = tuple(_KINDS)


def cycle_schema() -> dict[str, Any]:
    """The JSON Schema of a cycle message as :meth:`CycleRecord.to_json` gives it.

    Every field is required and no other is allowed. This is also what
    ``read_record`` returns (it puts non-finite floats back); in the file itself a
    non-finite float is null (see ``record_schema.nonfinite_on_the_wire``).
    """
    return {
        "$schema": SCHEMA_DIALECT,
        "title": SCHEMA_TITLE,
        "description": (
            "One control cycle, as the loop saw and decided it. Times are seconds on the "
            "loop clock unless the name ends in _ms; vectors are in the bundle's joint order."
        ),
        "type": "object",
        "properties": {name: copy.deepcopy(k.schema) for name, k in _KINDS.items()},
        "required": list(FIELDS),
        "additionalProperties": False,
    }


def _type_words(node: Mapping[str, Any]) -> str:
    types_ = node["type"] if isinstance(node["type"], list) else [node["type"]]
    word = types_[0]
    if word == "array":
        word = f"{node['maxItems']} numbers"
    elif word == "object":
        word = "{name: number}"
    elif "enum" in node:
        word = " / ".join(node["enum"])
    return f"{word} or null" if "null" in types_ else word


def field_table() -> str:
    """The cycle fields as a Markdown table (``docs/recording.md`` carries it)."""
    rows = ["| field | type | meaning [unit] |", "| --- | --- | --- |"]
    for name, k in _KINDS.items():
        rows.append(f"| `{name}` | {_type_words(k.schema)} | {k.schema['description']} |")
    return "\n".join(rows) + "\n"
