"""`eval --trace-labels`: the expert labels beside the acting policy, one line a cycle."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from grasprt.evaluation.evaluate import Attempt, eval_config, expert_policy, run_attempts
from grasprt.evaluation.label_trace import Disagreements, LabelTrace, label_trace_factory
from grasprt.runtime.runner import onnx_policy

PLACEHOLDER = str(Path(__file__).resolve().parents[2] / "models" / "placeholder")


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_the_expert_beside_itself_labels_exactly_what_it_does() -> None:
    # A second expert on the same world, in lockstep with the acting one: every label
    # must equal the action, and the trace must follow the grasp to its lift.
    out, counts = io.StringIO(), Disagreements()
    cfg = eval_config(PLACEHOLDER, robot="sim", max_steps=80, gt_mask=True)
    (res,) = run_attempts(
        cfg, [Attempt(0.6, 0.0, 3)], policy=label_trace_factory(out, expert_policy, counts)
    )
    rows = _rows(out.getvalue())
    assert res.success and len(rows) == res.steps == counts.cycles
    assert [r["step"] for r in rows] == list(range(len(rows)))
    assert all(r["gripper_out"] == r["gripper_label"] and r["joint_gap"] == 0 for r in rows)
    assert counts.open_where_close == counts.close_where_open == 0
    assert rows[-1]["held"] and rows[-1]["lift_m"] >= 0.05 and rows[-1]["expert_state"] == "lift"
    assert rows[0]["expert_state"] == "approach" and not rows[0]["closing"]


def test_each_attempt_of_the_bundle_is_numbered_and_counted() -> None:
    # The placeholder's random controller acts; the expert's labels differ from it.
    out, counts = io.StringIO(), Disagreements()
    cfg = eval_config(PLACEHOLDER, robot="sim", max_steps=6)
    results = run_attempts(
        cfg,
        [Attempt(0.6, 0.0, 1), Attempt(0.6, 0.05, 2)],
        policy=label_trace_factory(out, onnx_policy, counts),
    )
    rows = _rows(out.getvalue())
    assert [r["attempt"] for r in rows] == [0] * results[0].steps + [1] * results[1].steps
    assert counts.cycles == len(rows) == 12
    assert any(r["joint_gap"] > 0 for r in rows)
    by_rows = sum((r["gripper_out"] > 0) != (r["gripper_label"] > 0) for r in rows)
    assert counts.open_where_close + counts.close_where_open == by_rows


def test_cli_writes_the_trace_and_says_what_it_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    res = subprocess.run(
        [
            sys.executable, "-m", "grasprt.cli", "eval", "--quiet", "--bundle", PLACEHOLDER,
            "--grid", "1", "--repeats", "1", "--max-steps", "4", "--trace-labels", str(path),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = _rows(path.read_text())
    assert len(rows) == 4
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("label trace: ")]
    assert line.startswith("label trace: 4 cycles;") and line.endswith(str(path))


def test_the_trace_passes_the_loops_warm_calls_to_the_policy_it_wraps() -> None:
    calls: list[str] = []

    class Inner:
        stages = ("x",)
        mask = None

        def prewarm(self) -> None:
            calls.append("prewarm")

        def warm_up(self) -> None:
            calls.append("warm_up")

    trace = LabelTrace(Inner(), expert=None, world=None, emit=lambda row: None)
    trace.warm_up()
    trace.prewarm()
    assert calls == ["warm_up", "prewarm"] and trace.stages == ("x", "expert_label")
