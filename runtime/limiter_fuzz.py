"""`grasprt fuzz-limiter`: millions of random and adversarial requests through `limit`.

Each batch draws its cases with numpy (so a seed replays them exactly), passes each
one through the real :func:`~grasprt.runtime.limiter.limit` (one call per case, as the
loop makes them), and has the independent oracle (limiter_oracle.py) judge the whole
batch at once. Kinds of case, mixed in every batch:

    q           inside the range, exactly at a bound or its margin, just beyond, far
                beyond (up to 10 rad out), or near the neutral pose
    action      the unit box and a little beyond, huge (1e6 .. 1e300), tiny (1e-300,
                subnormal), exact zeros, and now and then one NaN or infinity
    scale       the bundle's 0.05, anything in 0 .. 0.6, huge, tiny, zero, non-finite
    previous    none, within a few steps of q, far from it (up to 100 rad), non-finite
    gripper     requests on, inside and beyond the band; any dwell count
    config      velocity factor, margin, tracking steps, rate, band, dwell and a floor
                (none, or up to 5 cm above / 3 cm below the pose's lowest point)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grasprt.config import LimiterSettings
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER, RobotProfile
from grasprt.runtime import limiter_oracle as oracle
from grasprt.runtime.limiter import LimiterConfig, LimiterState, LimitStatus, limit

N = 7
FACTORS = np.array([0.1, 0.5, 1.0])
RATES = np.array([10.0, 30.0, 100.0])
MARGINS = np.array([0.0, 0.1, 0.3])
TRACKING = np.array([1.0, 3.0, 5.0])
BANDS = np.array([0.0, 0.1, 0.5])
DWELLS = np.array([0, 3, 10])
EXAMPLES_KEPT = 5
_FLAG_COLUMN = {s: i for i, s in enumerate(LimitStatus)}


def _pick(rng: np.random.Generator, choices: np.ndarray, b: int) -> np.ndarray:
    return choices[rng.integers(0, choices.size, b)]


def _joints(rng: np.random.Generator, b: int, margins: np.ndarray) -> np.ndarray:
    lo, hi = oracle.LOWER, oracle.UPPER
    kind = rng.integers(0, 6, (b, N))
    inside = rng.uniform(lo, hi, (b, N))
    at_bound = np.where(rng.random((b, N)) < 0.5, lo, hi)
    at_margin = np.where(rng.random((b, N)) < 0.5, lo + margins[:, None], hi - margins[:, None])
    beyond = np.where(rng.random((b, N)) < 0.5, lo, hi) + rng.uniform(-0.3, 0.3, (b, N))
    far = rng.uniform(lo - 10, hi + 10, (b, N))
    neutral = np.array([0, -1.18, 0, 2.18, 0, 0.57, 3.3161]) + rng.normal(0, 0.3, (b, N))
    return np.choose(kind, [inside, at_bound, at_margin, beyond, far, neutral])


def _values(rng: np.random.Generator, shape: tuple[int, int], unit: float) -> np.ndarray:
    """Ordinary values (within `unit`) mixed with huge, tiny, zero and the odd non-finite."""
    kind = rng.choice(6, shape, p=[0.55, 0.12, 0.12, 0.08, 0.08, 0.05])
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    normal = rng.uniform(-unit, unit, shape)
    huge = sign * 10.0 ** rng.uniform(6, 300, shape)
    tiny = sign * np.where(rng.random(shape) < 0.5, 5e-324, 10.0 ** rng.uniform(-300, -9, shape))
    zero = np.zeros(shape)
    edge = sign * rng.choice([1.0, np.nextafter(1.0, 2.0), 0.1, np.nextafter(0.1, 1.0)], shape)
    bad = rng.choice([np.nan, np.inf, -np.inf], shape)
    # One in ~20 values is non-finite; keep most rows finite so the rules are reached.
    bad_rows = rng.random(shape[0]) < 0.15
    bad = np.where(bad_rows[:, None], bad, normal)
    return np.choose(kind, [normal, huge, tiny, zero, edge, bad])


def draw_batch(rng: np.random.Generator, b: int) -> dict[str, np.ndarray]:
    margin = _pick(rng, MARGINS, b)
    q = _joints(rng, b, margin)
    factor, rate = _pick(rng, FACTORS, b), _pick(rng, RATES, b)
    max_step = oracle.VELOCITY[None, :] * factor[:, None] / rate[:, None]
    prev_kind = rng.integers(0, 4, b)
    near = q + rng.uniform(-6, 6, (b, N)) * max_step
    far = q + rng.uniform(-100, 100, (b, N))
    odd = _values(rng, (b, N), 1.0) + q
    prev = np.choose(prev_kind[:, None], [q, near, far, odd])
    scale = np.where(
        (rng.random(b) < 0.5)[:, None], 0.05, np.abs(_values(rng, (b, N), 0.6))
    )
    floor = oracle.lowest_z(np.where(np.isfinite(q), q, 0.0)) + rng.uniform(-0.03, 0.05, b)
    return {
        "q": q,
        "action": _values(rng, (b, N + 1), 1.3),
        "scale": scale,
        "prev": prev,
        "has_prev": prev_kind > 0,
        "closed": rng.random(b) < 0.5,
        "cycles": np.where(rng.random(b) < 0.3, -1, rng.integers(0, 12, b)),
        "factor": factor,
        "rate": rate,
        "margin": margin,
        "tracking": _pick(rng, TRACKING, b),
        "band": _pick(rng, BANDS, b),
        "dwell": _pick(rng, DWELLS, b),
        "floor": np.where(rng.random(b) < 0.6, floor, np.nan),
    }


@dataclass
class Configs:
    """LimiterConfig objects, one per distinct setting (there are few)."""

    cache: dict[tuple, LimiterConfig] = field(default_factory=dict)

    def get(self, batch: dict[str, np.ndarray], i: int) -> LimiterConfig:
        key = tuple(float(batch[k][i]) for k in ("factor", "rate", "margin", "tracking", "band"))
        key += (int(batch["dwell"][i]), float(batch["floor"][i]))
        cfg = self.cache.get(key)
        if cfg is None:
            s = LimiterSettings(
                velocity_factor=key[0],
                joint_margin=key[2],
                tracking_steps=key[3],
                gripper_band=key[4],
                gripper_dwell=key[5],
            )
            floor = None if np.isnan(key[6]) else key[6]
            cfg = LimiterConfig(s, key[1], floor)
            if len(self.cache) < 4096:
                self.cache[key] = cfg
        return cfg


def apply_limiter(
    batch: dict[str, np.ndarray], profile: RobotProfile, kin: Kinematics, configs: Configs
) -> dict[str, np.ndarray]:
    """The real limiter on every case of the batch; its answers as arrays."""
    b = batch["q"].shape[0]
    target = np.full((b, N), np.nan)
    fault = np.zeros(b, dtype=bool)
    closed = np.zeros(b, dtype=bool)
    target_on_fault = np.zeros(b, dtype=bool)
    fired = np.zeros((b, len(LimitStatus)), dtype=bool)
    for i in range(b):
        cyc = int(batch["cycles"][i])
        prev = tuple(batch["prev"][i].tolist()) if batch["has_prev"][i] else None
        state = LimiterState(prev, bool(batch["closed"][i]), None if cyc < 0 else cyc)
        res, _ = limit(
            batch["q"][i], batch["action"][i], batch["scale"][i], state,
            configs.get(batch, i), profile, kin,
        )  # fmt: skip
        fault[i] = res.fault is not None
        for flag in res.flags:
            fired[i, _FLAG_COLUMN[flag]] = True
        closed[i] = res.gripper_closed
        if res.target is not None:
            target[i] = res.target
            target_on_fault[i] = fault[i]
    return {
        "target": target,
        "fault": fault,
        "gripper_closed": closed,
        "fault_target": target_on_fault,
        "fired": fired,
    }


def fuzz(
    count: int,
    *,
    seed: int = 0,
    batch: int = 20_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run `count` cases; per check, how many broke it, and the first few that did."""
    profile = SAWYER
    oracle.check_profile_numbers(profile.lower, profile.upper, profile.velocity)
    kin = Kinematics(profile)
    rng = np.random.default_rng(seed)
    configs = Configs()
    counts: dict[str, int] = {}
    kinds = {"floor_set": 0, "with_prev": 0}
    fired = np.zeros(len(LimitStatus), dtype=np.int64)
    examples: list[dict[str, Any]] = []
    done, t0, limiter_s = 0, time.perf_counter(), 0.0
    while done < count:
        b = min(batch, count - done)
        cases = draw_batch(rng, b)
        t = time.perf_counter()
        answers = apply_limiter(cases, profile, kin, configs)
        limiter_s += time.perf_counter() - t
        merged = {**cases, **answers}
        bad = oracle.violations(merged)
        bad["fault_target"] = answers["fault_target"]
        for name, mask in bad.items():
            counts[name] = counts.get(name, 0) + int(mask.sum())
            for i in np.flatnonzero(mask)[: max(0, EXAMPLES_KEPT - len(examples))]:
                examples.append(_example(name, merged, int(i), done))
        fired += answers["fired"].sum(axis=0)
        kinds["floor_set"] += int(np.isfinite(cases["floor"]).sum())
        kinds["with_prev"] += int(cases["has_prev"].sum())
        done += b
        if on_progress is not None:
            on_progress(done, count)
    wall = time.perf_counter() - t0
    return {
        "count": done,
        "seed": seed,
        "violations": sum(counts.values()),
        "by_check": counts,
        "cases": kinds,
        # How often each of the limiter's rules acted: the cases reached every rule.
        "rules_fired": {s.name.lower(): int(fired[_FLAG_COLUMN[s]]) for s in LimitStatus},
        "examples": examples,
        "wall_s": wall,
        "limiter_s": limiter_s,
        "cases_per_s": done / wall if wall > 0 else 0.0,
    }


def _example(check: str, batch: dict[str, np.ndarray], i: int, offset: int) -> dict[str, Any]:
    keys = ("q", "action", "scale", "prev", "has_prev", "target", "floor", "margin", "factor")
    values = {k: np.asarray(batch[k][i]).tolist() for k in keys}
    return {"check": check, "case": offset + i, **values}
