"""A shadow bundle: a second policy on the live one's model view, never commanded.

``grasprt run --shadow DIR`` wraps the live policy in :class:`ShadowPolicy`. Each
cycle the live policy decides first; then, if the cycle has room, the shadow runs on
the same observation and the limiter's pure :func:`limit` says what it would have
made of the shadow's action from the very state the live action meets. What it
asked, the would-be target and verdict, and the divergence from the live decision
(action difference, mask IoU, a changed limiter verdict) go to the record
(``/grasprt/shadow``). Nothing the shadow does reaches the arm or the live limiter.

It must not push the loop into an overrun: before it runs, the time left in the
cycle's period (less a reserve for the cycle's writing) is compared with the most
the shadow has recently cost; when it will not fit, it is skipped for the cycle and
counted. On the simulator's clock there is no wall-time budget and it always runs.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from grasprt.runtime.limiter import Limiter, limit
from grasprt.runtime.timing import summarize
from grasprt.types import Observation, Policy

SHADOW_STAGE = "shadow"
# How many recent costs the estimate of the next one looks back on.
_RECENT = 32


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two masks thresholded at 0.5; two empty masks agree (1.0)."""
    x, y = np.asarray(a) > 0.5, np.asarray(b) > 0.5
    union = int(np.count_nonzero(x | y))
    return 1.0 if union == 0 else int(np.count_nonzero(x & y)) / union


def _no_mark(_stage: str) -> None:
    pass


class ShadowPolicy:
    """The live policy, and a shadow beside it: a :class:`grasprt.types.Policy`."""

    def __init__(
        self,
        live: Policy,
        shadow: Policy,
        *,
        name: str,
        limiter: Limiter,
        live_scale: np.ndarray,
        shadow_scale: np.ndarray,
        period_s: float | None,
        sink: Any = None,
        clock_now: Callable[[], float] = time.monotonic,
        reserve_fraction: float = 0.1,
    ) -> None:
        self.live = live
        self.shadow = shadow
        self.name = name
        self.limiter = limiter
        self.live_scale = np.asarray(live_scale, dtype=np.float32)
        self.shadow_scale = np.asarray(shadow_scale, dtype=np.float32)
        # None: no wall-time budget (the simulator's clock).
        self.period_s = period_s
        self.reserve_s = 0.0 if period_s is None else reserve_fraction * period_s
        self.sink = sink
        self.clock_now = clock_now
        # How long this cycle has run so far (the loop's stage timer says; set by the run).
        self.elapsed_s: Callable[[], float] = lambda: 0.0
        self.stages = (*live.stages, SHADOW_STAGE)
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self.costs_ms: list[float] = []
        self.skipped = 0
        self.verdict_changes = 0
        self.action_diffs: list[float] = []
        self.ious: list[float] = []

    @property
    def mask(self) -> np.ndarray:
        return self.live.mask

    def step(self, obs: Observation, mark: Callable[[str], None]) -> np.ndarray:
        action = self.live.step(obs, mark)
        skip = self._no_room()
        message = {"bundle": self.name, "skipped": skip} if skip else self._run(obs, action)
        if self.sink is not None:
            self.sink.put_shadow(self.clock_now(), message)
        mark(SHADOW_STAGE)
        return action

    def _no_room(self) -> str | None:
        if self.period_s is None or not self._recent:
            return None
        left = self.period_s - self.elapsed_s() - self.reserve_s
        need = max(self._recent)
        if need <= left:
            return None
        self.skipped += 1
        return f"budget: {left * 1e3:.1f} ms left, the shadow needs up to {need * 1e3:.1f} ms"

    def _run(self, obs: Observation, live_action: np.ndarray) -> dict[str, Any]:
        t0 = time.perf_counter()
        action = self.shadow.step(obs, _no_mark)
        lim = self.limiter
        state = lim.state  # before the live action is applied: what both would meet
        rest = (state, lim.config, lim.profile, lim.kin)
        would, _ = limit(obs.q, action, self.shadow_scale, *rest)
        live, _ = limit(obs.q, live_action, self.live_scale, *rest)
        iou = mask_iou(self.shadow.mask, self.live.mask)
        cost = time.perf_counter() - t0
        self._recent.append(cost)
        self.costs_ms.append(cost * 1e3)
        diff = float(np.max(np.abs(np.asarray(action, np.float64) - live_action)))
        changed = int(would.status) != int(live.status)
        self.verdict_changes += changed
        self.action_diffs.append(diff)
        self.ious.append(iou)
        both = would.target is not None and live.target is not None
        return {
            "bundle": self.name,
            "skipped": None,
            "cost_ms": cost * 1e3,
            "action": np.asarray(action, np.float64),
            "command": would.target,
            "limiter_status": int(would.status),
            "live_limiter_status": int(live.status),
            "verdict_changed": changed,
            "action_diff_max": diff,
            "command_diff_max": float(np.max(np.abs(would.target - live.target))) if both else None,
            "mask_iou": iou,
        }

    def report(self) -> dict[str, Any]:
        """The shadow's account for the run's summary."""
        ran = len(self.costs_ms)
        return {
            "bundle": self.name,
            "ran": ran,
            "skipped": self.skipped,
            "cost_ms": summarize(np.asarray(self.costs_ms, dtype=np.float64)),
            "verdict_changes": self.verdict_changes,
            "action_diff_max": summarize(np.asarray(self.action_diffs, dtype=np.float64)),
            "mask_iou_mean": float(np.mean(self.ious)) if ran else None,
        }
