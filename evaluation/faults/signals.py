"""Signals from outside: an operator's Ctrl-C, a service manager's SIGTERM, a SIGKILL."""

from __future__ import annotations

import signal

from grasprt.evaluation.faults import Fault, register

# The hardware-heartbeat monitor's own timeout (drivers/firmware/heartbeat_monitor.ino).
MONITOR_TIMEOUT_S = 0.3

register(
    Fault(
        "sigint",
        "signals",
        "SIGINT (Ctrl-C): hold at the next cycle, finish the record, exit 130",
        "hold",
        exits=(130,),
        inject=lambda t: t.signal(signal.SIGINT),
        devices=("heartbeat",),
    )
)
register(
    Fault(
        "sigterm",
        "signals",
        "SIGTERM: hold at the next cycle, finish the record, exit 143",
        "hold",
        exits=(143,),
        inject=lambda t: t.signal(signal.SIGTERM),
        devices=("heartbeat",),
    )
)
register(
    Fault(
        "sigkill",
        "signals",
        "SIGKILL: nothing runs; the heartbeat monitor trips, the record keeps all "
        "but its last second",
        "hold",
        exits=(-signal.SIGKILL,),
        inject=lambda t: t.signal(signal.SIGKILL),
        bound_s=lambda t: MONITOR_TIMEOUT_S,
        bound_text="monitor 300 ms",
        devices=("heartbeat",),
        # Long enough for the recorder's flush interval (1 s) to have come round twice.
        warm_commands=25,
    )
)
