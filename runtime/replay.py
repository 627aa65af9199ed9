"""`grasprt replay`: a record's frames and robot states through a bundle, offline.

The loop's decide half, cycle by cycle, on what the record holds: the recorded frame
(kept every cycle with ``--record-frames 1``; PNG, ``--record-frame-format png``, for
an exact replay) through the model view, the bundle's policy and a limiter rebuilt
from the run's settings, starting each episode where the run's limiter started (its
``episode_start`` event). No clock drives it: it runs as fast as the models do.

With the record's own bundle, engine and settings the masks, actions and commands
must come out bit for bit as recorded (a regression check before an ONNX Runtime or
OpenVINO upgrade reaches the robot). With another bundle it is a per-cycle divergence
report: action difference, mask IoU, limiter verdict changes. Each cycle is judged on
the recorded state and from the limiter state the run really had (what it sent), so
a difference in one cycle does not carry into the next: "would it have done the same
here?", cycle by cycle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grasprt.bundle import Bundle, check_against_profile, load_bundle
from grasprt.calibration.model_view import ModelView
from grasprt.config import InferenceSettings, LimiterSettings
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics
from grasprt.profiles import get_profile
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.limiter import Limiter, LimiterConfig, LimitResult
from grasprt.runtime.policy import OnnxPolicy
from grasprt.runtime.record_reader import decode_image, raw_messages, read_record
from grasprt.runtime.record_schema import CYCLE_TOPIC, FRAME_TOPIC, decode_message
from grasprt.runtime.shadow import mask_iou
from grasprt.runtime.timing import summarize
from grasprt.types import Intrinsics, Observation


@dataclass
class ReplayCycle:
    """One recorded cycle against its replay (``None``: a hold, nothing decided)."""

    index: int
    episode: int
    step: int
    verdict: str
    action_exact: bool | None = None
    mask_exact: bool | None = None
    command_exact: bool | None = None
    action_diff: float | None = None
    command_diff: float | None = None
    mask_iou: float | None = None
    recorded_status: int | None = None
    replayed_status: int | None = None

    @property
    def verdict_changed(self) -> bool:
        return self.recorded_status != self.replayed_status


@dataclass
class ReplayReport:
    record: str
    bundle: str
    same_bundle: bool
    lossless_frames: bool
    cycles: list[ReplayCycle] = field(default_factory=list)

    @property
    def decided(self) -> list[ReplayCycle]:
        return [c for c in self.cycles if c.action_exact is not None]

    @property
    def bit_exact(self) -> bool:
        d = self.decided
        return bool(d) and all(c.action_exact and c.mask_exact and c.command_exact for c in d)

    def summary(self) -> dict[str, Any]:
        d = self.decided

        def values(name: str) -> np.ndarray:
            v = [getattr(c, name) for c in d if getattr(c, name) is not None]
            return np.asarray(v, dtype=np.float64)

        ious = values("mask_iou")
        return {
            "record": self.record,
            "bundle": self.bundle,
            "same_bundle": self.same_bundle,
            "lossless_frames": self.lossless_frames,
            "cycles": len(self.cycles),
            "decided": len(d),
            "bit_exact": self.bit_exact,
            "actions_exact": sum(bool(c.action_exact) for c in d),
            "masks_exact": sum(bool(c.mask_exact) for c in d),
            "commands_exact": sum(bool(c.command_exact) for c in d),
            "verdict_changes": sum(c.verdict_changed for c in d),
            "action_diff": summarize(values("action_diff")),
            "command_diff_rad": summarize(values("command_diff")),
            "mask_iou_mean": float(ious.mean()) if ious.size else None,
            "mask_iou_min": float(ious.min()) if ious.size else None,
        }

    def to_json(self) -> dict[str, Any]:
        out = self.summary()
        out["per_cycle"] = [
            {**dataclasses.asdict(c), "verdict_changed": c.verdict_changed} for c in self.cycles
        ]
        return out


@dataclass
class _Recorded:
    """What replay needs of a record: cycles in order, their frames, the run's setup."""

    run: dict[str, Any]
    cycles: list[tuple[int, dict[str, Any]]]  # (sequence, cycle)
    frames: dict[int, bytes]  # sequence -> frame message
    masks: list[np.ndarray | None]  # lines up with cycles
    starts: dict[int, dict[str, Any]]  # episode -> episode_start detail
    camera: Intrinsics | None


def _load(path: Path) -> _Recorded:
    record = read_record(path)
    if record.run is None:
        raise ConfigError(f"{path}: the record has no run message")
    cycles, frames = [], {}
    for topic, _ns, seq, data in raw_messages(path):
        if topic == CYCLE_TOPIC:
            cycles.append((seq, decode_message(data)))
        elif topic == FRAME_TOPIC:
            frames[seq] = data
    starts, camera = {}, None
    for e in record.events:
        if e["kind"] == "episode_start" and "q" in e["detail"]:
            starts[int(e["episode"])] = e["detail"]
        elif e["kind"] == "camera":
            c = dict(e["detail"]["intrinsics"])
            camera = Intrinsics(**{**c, "dist": tuple(c.get("dist", ()))})
    return _Recorded(record.run, cycles, frames, record.masks, starts, camera)


def _check(path: Path, rec: _Recorded) -> None:
    """One clear line for a record replay cannot use."""
    cfg = rec.run.get("config") or {}
    if cfg.get("gt_mask"):
        raise ConfigError(
            f"{path}: a --gt-mask run fed the simulator's true masks, which the record "
            "does not keep: it cannot be replayed"
        )
    if rec.camera is None or "table_z" not in rec.run:
        raise ConfigError(
            f"{path}: the record lacks the camera's intrinsics or the limiter's floor "
            "(recorded by an older grasprt): it cannot be replayed"
        )
    decided = [s for s, c in rec.cycles if c["action"] is not None]
    missing = [s for s in decided if s not in rec.frames]
    if missing:
        raise ConfigError(
            f"{path}: {len(missing)} of {len(decided)} decided cycles have no recorded "
            "frame: record with --record-frames 1 (and --record-frame-format png for an "
            "exact replay)"
        )
    episodes = {int(c["episode"]) for _, c in rec.cycles}
    if not episodes <= set(rec.starts):
        raise ConfigError(f"{path}: an episode's start (its episode_start event) is missing")


def _same(a: dict[str, Any], b: Bundle) -> bool:
    keys = (b.segmenter_sha256, b.controller_sha256, b.mask_threshold)
    try:
        rec = (a["segmenter"]["sha256"], a["controller"]["sha256"], a["mask_threshold"])
    except (KeyError, TypeError):
        return False
    scale = [float(x) for x in b.action_scale]
    return rec == keys and a.get("action_scale") == scale


class Replayer:
    """A record's decide half again, through ``bundle`` (None: the record's own)."""

    def __init__(self, record: str | Path, bundle: str | Path | None = None) -> None:
        self.path = Path(record)
        self.rec = _load(self.path)
        _check(self.path, self.rec)
        cfg = self.rec.run.get("config") or {}
        self.bundle_dir = str(bundle if bundle is not None else cfg.get("bundle", ""))
        self.bundle = load_bundle(self.bundle_dir)
        profile = get_profile(self.bundle.robot)
        check_against_profile(self.bundle, profile)
        inference = InferenceSettings(**cfg.get("inference", {}))
        self.policy = OnnxPolicy(Pipeline(self.bundle, inference))
        settings = LimiterSettings(**cfg.get("limiter", {}))
        limits = LimiterConfig.resolve(settings, self.bundle.rate_hz, self.rec.run["table_z"])
        self.limiter = Limiter(limits, profile, Kinematics(profile))
        assert self.rec.camera is not None
        self.view = ModelView(self.rec.camera, self.bundle.camera, min_coverage=0.0)
        self.scale = np.asarray(self.bundle.action_scale, dtype=np.float32)
        self.same_bundle = _same(self.rec.run.get("bundle") or {}, self.bundle)
        self.lossless = cfg.get("record_frame_format") == "png"

    def run(self) -> ReplayReport:
        report = ReplayReport(str(self.path), self.bundle_dir, self.same_bundle, self.lossless)
        episode = None
        for i, (seq, c) in enumerate(self.rec.cycles):
            if c["episode"] != episode:
                episode = c["episode"]
                self._begin(self.rec.starts[int(episode)])
            row = ReplayCycle(i, int(c["episode"]), int(c["step"]), str(c["verdict"]))
            if c["action"] is None:
                # A hold: the arm stood still, and the next step starts from where it is.
                self.limiter.note_command(None)
            else:
                self._decide(row, c, decode_image(self.rec.frames[seq]))
            report.cycles.append(row)
        return report

    def _begin(self, start: dict[str, Any]) -> None:
        # As the loop's episode start: from the measured pose, the gripper as it was.
        q0 = np.asarray(start["q"], dtype=np.float64)
        self.limiter.reset(q0, gripper_closed=float(start["gripper"]) >= 0.5)

    def _decide(self, row: ReplayCycle, c: dict[str, Any], frame: np.ndarray) -> None:
        q = np.asarray(c["q"], dtype=np.float64)
        view = self.view.apply(frame)
        action = self.policy.step(Observation(view, q, float(c["gripper"]), None), _no_mark)
        limited = self.limiter.apply(q, action, self.scale, float(c["gripper"]))
        mask = self.policy.mask[0, 0] > 0.5
        recorded_mask = self.rec.masks[row.index]
        a_rec = np.asarray(c["action"], dtype=np.float64)
        a_rep = np.asarray(action, dtype=np.float64)
        row.action_exact = bool(np.array_equal(a_rep, a_rec))
        row.action_diff = float(np.max(np.abs(a_rep - a_rec)))
        if recorded_mask is not None:
            recorded_mask = recorded_mask > 127
            row.mask_exact = bool(np.array_equal(mask, recorded_mask))
            row.mask_iou = mask_iou(mask, recorded_mask)
        row.command_exact, row.command_diff = _commands(c.get("command"), limited)
        row.recorded_status = c["limiter_status"]
        row.replayed_status = int(limited.status)
        if c.get("command") is not None:
            # Each cycle is judged from the state the run really had: the next starts
            # from what was sent, not from what this bundle would have sent.
            self.limiter.note_command(np.asarray(c["command"]), bool(c["gripper_closed"]))


def _commands(recorded: Any, limited: LimitResult) -> tuple[bool, float | None]:
    if recorded is None or limited.target is None:
        return recorded is None and limited.target is None, None
    rec = np.asarray(recorded, dtype=np.float64)
    rep = np.asarray(limited.target, dtype=np.float64)
    return bool(np.array_equal(rec, rep)), float(np.max(np.abs(rec - rep)))


def _no_mark(_stage: str) -> None:
    pass
