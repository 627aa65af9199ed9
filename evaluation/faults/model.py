"""The policy: a non-finite action, a model that gets slow, a loop thread that hangs."""

from __future__ import annotations

from grasprt.evaluation.faults import Fault, register

# Each step this much slower: over a 10 Hz period, so every cycle overruns.
SLOW_S = 0.15
# Longer than the heartbeat watchdog's timeout, shorter than the observation window.
HANG_S = 2.0

register(
    Fault(
        "nonfinite_output",
        "model",
        "the controller's action is NaN: the limiter refuses it, the gate latches",
        "hold",
        exits=(3,),
        inject=lambda t: t.send("nonfinite"),
    )
)
register(
    Fault(
        "slow_model",
        "model",
        f"each step {SLOW_S * 1e3:.0f} ms slower: an overrun streak stops the run",
        "hold",
        exits=(3,),
        inject=lambda t: t.send(f"slow {SLOW_S}"),
        bound_s=lambda t: t.watchdog.overrun_streak * (t.period_s + SLOW_S) + t.period_s,
        bound_text="overrun_streak slow cycles + 1",
    )
)
register(
    Fault(
        "hung_loop",
        "model",
        f"a step blocks {HANG_S:g} s: the heartbeat watchdog thread latches the gate",
        "hold",
        exits=(3,),
        inject=lambda t: t.send(f"hang {HANG_S}"),
        # The watchdog checks 5 times a timeout: it sees a stop within 1.2 timeouts,
        # and the loop's last beat was up to one cycle before the hang began.
        bound_s=lambda t: 1.2 * t.watchdog.heartbeat_s + t.period_s,
        bound_text="1.2 x heartbeat_s + 1 cycle",
        observe_s=HANG_S + 4.0,
    )
)
