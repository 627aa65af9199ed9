"""The limiter fuzz: its oracle against grasprt's kinematics, the oracle catching broken
limiters, and a short fuzz of the real one through the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER
from grasprt.runtime import limiter_oracle as oracle
from grasprt.runtime.limiter import LimitStatus
from grasprt.runtime.limiter_fuzz import Configs, apply_limiter, draw_batch, fuzz

REPO = Path(__file__).resolve().parents[2]
KIN = Kinematics(SAWYER)
FLOOR = list(LimitStatus).index(LimitStatus.FLOOR)  # its column in "fired"


def test_the_oracles_fk_agrees_with_grasprts() -> None:
    q = np.random.default_rng(5).uniform(oracle.LOWER - 1, oracle.UPPER + 1, (300, 7))
    mine = oracle.lowest_z(q)
    theirs = np.array([KIN.lowest_point_z(x) for x in q])
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)
    # And the points themselves, against grasprt's poses.
    p = KIN.poses(q[0])
    pts = oracle.guarded_points(q[:1])[0]
    np.testing.assert_allclose(pts[0], p.links[4][:3, 3], atol=1e-12)
    np.testing.assert_allclose(pts[2], p.hand[:3, 3], atol=1e-12)
    np.testing.assert_allclose(pts[3], p.fingertips, atol=1e-12)


def test_the_oracle_knows_the_profile_it_judges() -> None:
    oracle.check_profile_numbers(SAWYER.lower, SAWYER.upper, SAWYER.velocity)
    with pytest.raises(ValueError, match="upper"):
        oracle.check_profile_numbers(SAWYER.lower, np.array(SAWYER.upper) + 0.1, SAWYER.velocity)


@pytest.fixture(scope="module")
def judged() -> dict[str, np.ndarray]:
    cases = draw_batch(np.random.default_rng(11), 3000)
    return {**cases, **apply_limiter(cases, SAWYER, KIN, Configs())}


def test_the_real_limiter_passes_and_every_rule_is_reached(judged: dict) -> None:
    bad = oracle.violations(judged)
    assert {k: int(v.sum()) for k, v in bad.items()} == {k: 0 for k in bad}
    assert not judged["fault_target"].any()
    # Each rule acted on some case: the draw reaches all of them (OK is no rule).
    rules = [i for i, s in enumerate(LimitStatus) if s != LimitStatus.OK]
    assert judged["fired"][:, rules].any(axis=0).all()
    assert judged["fault"].any() and (~judged["fault"]).any()


def broken(judged: dict, **answers: np.ndarray) -> dict[str, int]:
    return {k: int(v.sum()) for k, v in oracle.violations({**judged, **answers}).items()}


def test_the_oracle_catches_an_unlimited_step(judged: dict) -> None:
    # A limiter that sends what was asked, unclipped: huge actions go straight through.
    with np.errstate(invalid="ignore"):  # the non-finite cases, masked out below
        req = judged["q"] + np.clip(judged["action"][:, :7], -1, 1) * judged["scale"]
    target = np.where(judged["fault"][:, None], np.nan, req)
    got = broken(judged, target=target)
    assert got["step"] > 0 and got["tracking"] > 0 and got["range"] > 0


def test_the_oracle_catches_a_floor_crossing(judged: dict) -> None:
    # Where the limiter stopped a step at the floor, turn the shoulder 0.05 rad more
    # whichever way lowers the guarded points by over 0.1 mm: the floor is crossed.
    stopped = np.flatnonzero(judged["fired"][:, FLOOR] & ~judged["fault"])
    target = judged["target"].copy()
    for i in stopped:
        for d in (0.05, -0.05):
            t = target[i].copy()
            t[1] += d
            if oracle.lowest_z(t[None])[0] < oracle.lowest_z(target[i][None])[0] - 1e-4:
                target[i] = t
                break
    assert stopped.size > 10
    assert broken(judged, target=target)["floor"] > 0


def test_the_oracle_catches_a_fault_missed_and_a_gripper_rule_broken(judged: dict) -> None:
    assert broken(judged, fault=np.zeros_like(judged["fault"]))["fault"] > 0
    flipped = judged["gripper_closed"].copy()
    flipped[::7] = ~flipped[::7]
    assert broken(judged, gripper_closed=flipped)["gripper"] > 0


def test_fuzz_counts_every_case_with_no_violation() -> None:
    r = fuzz(2500, seed=3, batch=1000)
    assert r["count"] == 2500 and r["violations"] == 0 and r["examples"] == []
    assert r["cases"]["floor_set"] > 0 and r["rules_fired"]["floor"] > 0


def test_the_same_seed_draws_the_same_cases() -> None:
    a = draw_batch(np.random.default_rng(9), 50)
    b = draw_batch(np.random.default_rng(9), 50)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_fuzz_limiter_cli_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    proc = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "fuzz-limiter", "--count", "1500", "--seed", "4",
         "--batch", "500", "-q", "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["count"] == 1500 and r["violations"] == 0 and r["seed"] == 4


def test_fuzz_limiter_refuses_bad_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "fuzz-limiter", "--count", "0"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "grasprt: error: --count must be at least 1, got 0"
