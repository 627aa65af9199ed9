"""Shadow bundles: real ONNX Runtime sessions of two real bundles side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grasprt.bundle import load_bundle
from grasprt.config import LimiterSettings
from grasprt.profiles import get_profile
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.limiter import Limiter, LimiterConfig
from grasprt.runtime.policy import OnnxPolicy
from grasprt.runtime.record_reader import read_record
from grasprt.runtime.shadow import SHADOW_STAGE, ShadowPolicy, mask_iou
from grasprt.types import Observation

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "models" / "reference"
PLACEHOLDER = REPO / "models" / "placeholder"


class Sink:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def put_shadow(self, t: float, message: dict) -> bool:
        self.messages.append(message)
        return True


def _policy(path: Path) -> OnnxPolicy:
    return OnnxPolicy(Pipeline(load_bundle(path)))


def _obs(seed: int) -> Observation:
    rng = np.random.default_rng(seed)
    bundle = load_bundle(REFERENCE)
    view = rng.integers(0, 256, size=(400, 400, 3), dtype=np.uint8)
    q = np.asarray(get_profile(bundle.robot).neutral, dtype=np.float64) + rng.normal(0, 0.01, 7)
    return Observation(view, q, 0.0)


def _shadowed(period_s: float | None, sink: Sink) -> tuple[ShadowPolicy, Limiter]:
    live_b, shadow_b = load_bundle(REFERENCE), load_bundle(PLACEHOLDER)
    profile = get_profile(live_b.robot)
    limiter = Limiter(LimiterConfig.resolve(LimiterSettings(), live_b.rate_hz, -0.06), profile)
    policy = ShadowPolicy(
        _policy(REFERENCE),
        _policy(PLACEHOLDER),
        name="placeholder",
        limiter=limiter,
        live_scale=np.asarray(live_b.action_scale),
        shadow_scale=np.asarray(shadow_b.action_scale),
        period_s=period_s,
        sink=sink,
    )
    return policy, limiter


def test_the_shadow_never_changes_the_live_decision() -> None:
    sink = Sink()
    policy, limiter = _shadowed(None, sink)
    alone = _policy(REFERENCE)
    limiter.reset(_obs(0).q, gripper_closed=False)
    before = limiter.state
    marks: list[str] = []
    for k in range(3):
        obs = _obs(k)
        action = policy.step(obs, marks.append)
        np.testing.assert_array_equal(action, alone.step(obs, lambda s: None))
        np.testing.assert_array_equal(policy.mask, alone.mask)
    assert limiter.state == before  # the shadow only asks limit(), the pure one
    assert marks == ["segmenter+controller", SHADOW_STAGE] * 3
    assert policy.stages == ("segmenter+controller", SHADOW_STAGE)
    assert len(sink.messages) == 3
    m = sink.messages[-1]
    assert m["skipped"] is None and m["bundle"] == "placeholder"
    assert len(m["action"]) == 8 and len(m["command"]) == 7
    shadow_action = np.asarray(m["action"])
    assert m["action_diff_max"] == pytest.approx(float(np.max(np.abs(shadow_action - action))))
    assert 0.0 <= m["mask_iou"] <= 1.0
    assert m["verdict_changed"] == (m["limiter_status"] != m["live_limiter_status"])
    report = policy.report()
    assert report["ran"] == 3 and report["skipped"] == 0 and report["cost_ms"]["max"] > 0


def test_no_room_in_the_cycle_skips_the_shadow_and_counts_it() -> None:
    sink = Sink()
    policy, limiter = _shadowed(100.0, sink)  # a period no shadow could miss
    limiter.reset(_obs(0).q, gripper_closed=False)
    policy.step(_obs(0), lambda s: None)
    assert sink.messages[-1]["skipped"] is None
    # A cycle already past its period: nothing the shadow has cost can fit.
    policy.elapsed_s = lambda: 200.0
    live = policy.step(_obs(1), lambda s: None)
    assert live.shape == (8,)
    assert sink.messages[-1]["skipped"].startswith("budget: ")
    assert "action" not in sink.messages[-1]
    report = policy.report()
    assert report["ran"] == 1 and report["skipped"] == 1


def test_mask_iou() -> None:
    a = np.zeros((100, 100), np.float32)
    b = a.copy()
    assert mask_iou(a, b) == 1.0
    a[:10, :10] = 1.0
    assert mask_iou(a, b) == 0.0
    b[5:15, :10] = 1.0
    assert mask_iou(a, b) == pytest.approx(50 / 150)


def test_a_shadow_run_records_what_a_replay_through_the_shadow_bundle_finds(
    tmp_path: Path,
) -> None:
    rec, out = tmp_path / "s.mcap", tmp_path / "s.json"
    run = [sys.executable, "-m", "grasprt.cli", "run", "--robot", "sim", "--clock", "sim"]
    run += ["--max-steps", "15", "-q", "--bundle", str(REFERENCE), "--shadow", str(PLACEHOLDER)]
    run += ["--record", str(rec), "--record-frames", "1", "--record-frame-format", "png"]
    # Two bundles a cycle on a machine others load: the wall-time heartbeat (not under
    # test here) gets room, so a slow cycle cannot end the run as a fault.
    watchdog = tmp_path / "watchdog.toml"
    watchdog.write_text("[watchdog]\nheartbeat_s = 10.0\n")
    run += ["--config", str(watchdog)]
    p = subprocess.run([*run, "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    summary = json.loads(out.read_text())
    record = read_record(rec)
    decided = [c for c in record.cycles if c["action"] is not None]
    shadows = [s for s in record.shadows if s is not None]
    assert summary["shadow"]["ran"] == len(shadows) == len(decided) == 15
    assert summary["shadow"]["skipped"] == 0  # the sim's clock has no budget to miss
    assert "shadow" in summary["stages"]
    replay_json = tmp_path / "r.json"
    p = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "replay", str(rec), "--bundle", str(PLACEHOLDER),
         "--json", str(replay_json)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = json.loads(replay_json.read_text())["per_cycle"]
    # The same bundle on the same views from the same limiter states: the same numbers.
    for row, shadow in zip(rows, record.shadows, strict=True):
        assert shadow is not None
        assert row["action_diff"] == shadow["action_diff_max"]
        assert row["mask_iou"] == shadow["mask_iou"]
        assert row["replayed_status"] == shadow["limiter_status"]


def test_a_shadow_bundle_that_does_not_load_is_one_line(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "run", "--robot", "sim", "--max-steps", "1",
         "--shadow", str(tmp_path / "nothing")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("grasprt: error: "), p.stderr
