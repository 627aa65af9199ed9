"""What one trial shows: the time to hold, commands after it, exit status, the record.

The arm's side is the fault-injection log (every ``command`` and ``hold`` the robot
driver was handed, on the host's monotonic clock, the clock the campaign stamps its
injection with). The record is read back with the runtime's own reader; what it lost
is every command the arm had that the record has no cycle for.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from grasprt.evaluation.faults import Fault, Timing
from grasprt.evaluation.faults.trial import Trial, read_ops
from grasprt.runtime.record_reader import read_record

# The recorder's promise for a killed process (runtime/recorder.py): at most its flush
# interval of records is lost, plus the cycle in flight.
FLUSH_INTERVAL_S = 1.0
# The hardware-heartbeat monitor's timeout (drivers/firmware/heartbeat_monitor.ino).
MONITOR_TIMEOUT_MS = 300.0


@dataclass
class Row:
    fault: str
    family: str
    expect: str
    exit: int | None = None
    exit_ok: bool = False
    # Injection to the first hold the arm was given (ms); None: no hold.
    hold_ms: float | None = None
    bound_ms: float = 0.0
    bound_text: str = ""
    in_bound: bool | None = None
    commands_after_hold: int | None = None
    commands_after_injection: int = 0
    record_readable: bool = False
    record_complete: bool = False
    record_cycles: int = 0
    record_lost_commands: int = 0
    record_lost_s: float = 0.0
    record_dropped: int | None = None
    record_note: str | None = None
    reason: str | None = None
    ended_by_campaign: bool = False
    # The hardware-heartbeat emulator: "disarmed" (told we stop on purpose) or
    # "tripped" (e-stop open), and after how long from the injection.
    heartbeat: str | None = None
    heartbeat_trip_ms: float | None = None
    # The Sawyer twin (--robot sawyer): its own command-timeout hold after the
    # injection (ms), and joint commands it received after that hold.
    twin_hold_ms: float | None = None
    twin_commands_after_hold: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.error and all(self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def last_new_frame(trial: Trial) -> float | None:
    """When the camera gave its last new frame: the newest frame stamp in the record."""
    try:
        r = read_record(trial.record)
    except Exception:
        return None
    stamps = [c["frame_stamp"] for c in r.cycles if c.get("frame_stamp") is not None]
    return max(stamps) if stamps else None


def wait_for_trip(trial: Trial, timeout_s: float = 1.5) -> None:
    """A monitor that was not told we stop trips on its own timeout: give it time."""
    hb = trial.heartbeat
    if hb is None:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and hb.state == "armed":
        time.sleep(0.01)


def measure(trial: Trial, exit_code: int, timing: Timing) -> Row:
    f = trial.fault
    row = Row(f.name, f.family, f.expect, exit=exit_code, exit_ok=exit_code in f.exits)
    row.bound_ms = f.bound_s(timing) * 1e3
    row.bound_text = f.bound_text
    row.ended_by_campaign = trial.ended_by_campaign
    if f.began_at is not None:
        began = f.began_at(trial)
        row.notes["campaign_injected_at"] = trial.t_inject
        trial.t_inject = began if began is not None else trial.t_inject
    row.notes = dict(trial.notes)
    _arm(row, trial, f.comes_back)
    _summary(row, trial)
    _record(row, trial)
    _heartbeat(row, trial)
    if trial.side is not None:
        _twin(row, trial, timing)
    _verdict(row, f)
    return row


def _arm(row: Row, trial: Trial, comes_back: bool) -> None:
    ops = read_ops(trial.arm_log)
    t0 = trial.t_inject
    commands = [o["t"] for o in ops if o["op"] == "command"]
    trial.notes.setdefault("commands", len(commands))
    row.notes["commands"] = len(commands)
    if t0 is None:
        return
    row.commands_after_injection = sum(t > t0 for t in commands)
    end = trial.t_end if trial.t_end is not None else float("inf")
    holds = [o["t"] for o in ops if o["op"] == "hold" and t0 <= o["t"] < end]
    if holds:
        row.hold_ms = (holds[0] - t0) * 1e3
        row.commands_after_hold = sum(t > holds[0] for t in commands)
        if comes_back:
            back = next((o["t"] for o in ops if o["op"] == "resume"), end)
            lost = sum(holds[0] < t <= back for t in commands)
            row.commands_after_hold = lost
            row.notes["commands_while_lost"] = lost
            row.notes["commands_once_back"] = sum(back < t < end for t in commands)
    row.notes["last_command_t"] = max(commands) if commands else None


def _summary(row: Row, trial: Trial) -> None:
    with contextlib.suppress(OSError, json.JSONDecodeError):
        s = json.loads(trial.summary_path.read_text())
        faults = [x["reason"] for x in s.get("faults", [])]
        row.reason = faults[0] if faults else s.get("stopped")
        if s.get("record_failure"):
            row.notes["record_failure"] = s["record_failure"]
        row.notes["overruns"] = s.get("overruns")
        row.notes["lateness_p99_ms"] = s.get("lateness_ms", {}).get("p99")
    if row.reason is None:
        # No summary (killed, refused): the one line the run left on stderr, if any.
        with contextlib.suppress(OSError):
            lines = (trial.workdir / "stderr.txt").read_text(errors="replace").splitlines()
            errors = [x for x in lines if x.startswith("grasprt")]
            row.reason = errors[-1] if errors else None
            row.notes["traceback"] = any("Traceback" in x for x in lines)


def _record(row: Row, trial: Trial) -> None:
    if not trial.record.exists():
        row.record_note = "no record (the run refused to start)"
        return
    try:
        r = read_record(trial.record)
    except Exception as e:  # a record that cannot be read is the finding, not a crash
        row.record_note = f"unreadable: {type(e).__name__}: {e}"
        return
    row.record_readable = True
    row.record_complete = r.complete
    row.record_cycles = len(r.cycles)
    row.record_dropped = r.dropped
    if r.damage:
        row.record_note = r.damage
    ops = read_ops(trial.arm_log)
    commands = [o["t"] for o in ops if o["op"] == "command"]
    last = max(r.cycle_times) if r.cycle_times else float("-inf")
    lost = [t for t in commands if t > last]
    row.record_lost_commands = len(lost)
    row.record_lost_s = (max(lost) - last) if lost and r.cycle_times else 0.0


def _heartbeat(row: Row, trial: Trial) -> None:
    hb = trial.heartbeat
    if hb is None:
        return
    row.heartbeat = hb.state
    if hb.tripped_at is not None and trial.t_inject is not None:
        row.heartbeat_trip_ms = (hb.tripped_at - trial.t_inject) * 1e3


def _twin(row: Row, trial: Trial, timing: Timing) -> None:
    from grasprt.drivers.sawyer import SawyerSettings
    from grasprt.evaluation.faults.sawyer import twin_log

    t0 = trial.t_inject_wall
    if t0 is None:
        return
    lines = twin_log(trial.workdir)
    holds = [x["at"] for x in lines if x.get("hold") and x["at"] >= t0]
    received = [x["received"] for x in lines if "received" in x]
    if holds:
        row.twin_hold_ms = (holds[0] - t0) * 1e3
        row.twin_commands_after_hold = sum(t > holds[0] for t in received)
    if row.fault == "sigkill":
        # The robot's own backstop: it holds its command timeout after the last command
        # (the twin checks it every 10 ms tick).
        row.bound_ms = (SawyerSettings().command_timeout_s + 0.02) * 1e3
        row.bound_text = "twin command timeout 0.25 s + 2 ticks"
        row.hold_ms = row.twin_hold_ms
        row.commands_after_hold = row.twin_commands_after_hold


def _verdict(row: Row, f: Fault) -> None:
    c = row.checks
    c["exit"] = row.exit_ok
    if f.expect == "refuse":
        c["nothing moved"] = row.notes.get("commands", 0) == 0
        c["one line, no traceback"] = bool(row.reason) and not row.notes.get("traceback")
        return
    if f.expect == "hold":
        if f.name == "sigkill":
            # Nobody is left to hold: the external monitor's e-stop is the hold, and on
            # the Sawyer the robot's own command timeout.
            c["monitor tripped"] = row.heartbeat == "tripped"
            c["trip in bound"] = (row.heartbeat_trip_ms or 1e9) <= MONITOR_TIMEOUT_MS
            if row.bound_text.startswith("twin"):
                c["twin held"] = row.twin_hold_ms is not None
                c["no command after hold"] = row.twin_commands_after_hold == 0
                c["hold in bound"] = (row.twin_hold_ms or 1e9) <= row.bound_ms
        else:
            c["held"] = row.hold_ms is not None
            if f.comes_back:
                c["no command while lost"] = row.commands_after_hold == 0
                c["commands again once back"] = row.notes.get("commands_once_back", 0) > 0
            else:
                c["no command after hold"] = row.commands_after_hold == 0
            row.in_bound = row.hold_ms is not None and row.hold_ms <= row.bound_ms
            c["hold in bound"] = row.in_bound
    else:
        # Riding through: the arm kept being commanded, no fault stop.
        c["kept commanding"] = row.commands_after_injection > 0
        if row.exit == 3 and f.may_fault:
            c["no command after hold"] = row.commands_after_hold == 0
        else:
            c["no fault"] = row.exit != 3
    c["record readable"] = row.record_readable
    if f.name == "sigkill":
        c["lost <= flush interval"] = row.record_lost_s <= FLUSH_INTERVAL_S + 0.1
    elif f.record_fails:
        c["failure reported"] = "record_failure" in row.notes
    else:
        c["record complete"] = row.record_complete
        c["nothing lost"] = row.record_lost_commands == 0
