"""The safety limiter: turns a controller's action (a request) into a joint target.

Every joint target that reaches a robot comes out of :func:`limit`. It is a pure
function of its inputs, so each rule can be tested on its own and the loop's
behaviour replayed exactly from a recording. The rules follow what the trusted
control stacks do (``../shared/REFERENCE.md``):

* ros2_control's ``forward_command_controller`` drops a whole command when any value
  is not finite; so do we, and a fault never carries a target.
* ros2_control's joint_limits saturation limiter bounds each step to the previous
  command ± v_max·dt and then to the position limits.
* MoveIt Servo scales *all* joints by one factor (the smallest clamp ratio) so the
  motion keeps its direction, keeps 0.1 rad joint margins, and reports one status code
  per cycle.

The Sawyer's position mode is "raw" (no collision avoidance on the robot side), so
this is the last line of defence: the table floor and the tracking bound are ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

from grasprt.config import LimiterSettings, check_number
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics
from grasprt.profiles import RobotProfile

# Bisection steps for the floor back-off: 2**-10 of one step (0.22 mrad at the
# Sawyer's largest step) is finer than the arm can follow, at ~12 FK calls a cycle.
FLOOR_BISECTION_STEPS = 10


class LimitStatus(IntEnum):
    """One code per cycle, in MoveIt Servo's spirit (negative: invalid, 0: untouched)."""

    FAULT = -1
    OK = 0
    VELOCITY_SCALED = 1
    TRACKING_CLAMPED = 2
    JOINT_BOUND = 3
    FLOOR = 4
    ACTION_CLIPPED = 5
    GRIPPER_HELD = 6


# When several rules act, `status` names the one that matters most for safety; the
# full set is in `LimitResult.flags`.
_SEVERITY = (
    LimitStatus.FAULT,
    LimitStatus.FLOOR,
    LimitStatus.JOINT_BOUND,
    LimitStatus.TRACKING_CLAMPED,
    LimitStatus.VELOCITY_SCALED,
    LimitStatus.ACTION_CLIPPED,
    LimitStatus.GRIPPER_HELD,
)


@dataclass(frozen=True)
class LimiterConfig:
    """The limiter's settings as it applies them: the user's knobs (one type, in
    grasprt/config.py), the bundle's rate, and the floor *height* (the floor plane or
    the driver's table, plus the clearance: ``LimiterSettings.floor_height``)."""

    settings: LimiterSettings = field(default_factory=LimiterSettings)
    rate_hz: float = 10.0
    # Lowest allowed z (base frame) of the wrist, hand and fingertips; None: no floor.
    floor: float | None = None

    def __post_init__(self) -> None:
        check_number("limiter", "rate_hz", self.rate_hz, low=0, low_open=True)
        if self.floor is not None:
            check_number("limiter", "floor", self.floor)

    @classmethod
    def resolve(
        cls, settings: LimiterSettings, rate_hz: float, table_z: float | None
    ) -> LimiterConfig:
        return cls(settings, rate_hz, settings.floor_height(table_z))

    def max_step(self, profile: RobotProfile) -> np.ndarray:
        """Largest change of each joint in one step, rad."""
        factor = self.settings.velocity_factor
        return np.asarray(profile.velocity, dtype=np.float64) * factor / self.rate_hz

    def check_profile(self, profile: RobotProfile) -> None:
        """Refuse a margin that leaves a joint no room at all."""
        margin = self.settings.joint_margin
        for joint in profile.joints:
            if joint.lower + margin >= joint.upper - margin:
                raise ConfigError(
                    f"limiter: joint_margin {margin} leaves {joint.name} "
                    f"({joint.lower} .. {joint.upper}) no range"
                )


@dataclass(frozen=True)
class LimiterState:
    """What the limiter remembers between cycles (immutable, so `limit` stays pure)."""

    # The last command sent; None at the start of an episode or after a hold, when the
    # next step starts from the measured position.
    prev_command: tuple[float, ...] | None = None
    gripper_closed: bool = False
    # Cycles since the gripper last changed; None = not changed this episode, so the
    # first change is never delayed.
    cycles_since_gripper_change: int | None = None


@dataclass(frozen=True, eq=False)
class LimitResult:
    # The joint target to send, or None on a fault (then the arm must hold).
    target: np.ndarray | None
    gripper_closed: bool
    # q_measured + clipped action * action_scale: what the controller asked for.
    requested: np.ndarray | None
    status: LimitStatus
    flags: frozenset[LimitStatus] = field(default_factory=frozenset)
    # The limiter intervened: any flag is set.
    limited: bool = False
    # MoveIt Servo's velocity scaling factor: 1.0 when no joint was too fast.
    scale: float = 1.0
    fault: str | None = None
    # Where the step started: the previous command (pulled within the tracking bound)
    # or the measured position. Steps and the floor are judged against it.
    reference: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _fault(reason: str, state: LimiterState) -> tuple[LimitResult, LimiterState]:
    result = LimitResult(
        target=None,
        gripper_closed=state.gripper_closed,
        requested=None,
        status=LimitStatus.FAULT,
        flags=frozenset({LimitStatus.FAULT}),
        limited=True,
        scale=0.0,
        fault=reason,
    )
    # A fault changes nothing the limiter remembers: the loop stops or holds.
    return result, state


# The rules below work on Python lists of floats, not numpy arrays: the limiter runs
# right after the models, whose traffic has just taken the caches, and there every
# numpy call on a 7-vector costs tens of microseconds. Each operation is the one
# numpy did, element by element (clip as numpy clips: max first, then min), so the
# numbers are the same; the floor's forward kinematics stays in numpy.
Vec = list[float]


def _vector(name: str, value: object, size: int) -> tuple[Vec | None, str | None]:
    if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.shape == (size,):
        a = value.tolist()  # the loop's own vectors: no copy through np.array
    else:
        try:
            a = np.array(value, dtype=np.float64).reshape(-1).tolist()
        except (TypeError, ValueError):
            return None, f"{name} is not a list of numbers"
    if len(a) != size:
        return None, f"{name} has {len(a)} values, expected {size}"
    for i, v in enumerate(a):
        if not math.isfinite(v):
            return None, f"non-finite {name} at index {i}: {v}"
    return a, None


def _clip(x: float, lo: float, hi: float) -> float:
    m = x if x > lo else lo
    return m if m < hi else hi


def _clipped(v: Vec, lo: Vec, hi: Vec) -> Vec:
    return [_clip(x, a, b) for x, a, b in zip(v, lo, hi, strict=True)]


def _largest_fraction(ref: Vec, step: Vec, lo: Vec, hi: Vec) -> float:
    """The largest f in [0, 1] with ref + f*step inside [lo, hi] (ref is inside)."""
    f = 1.0
    for r, s, a, b in zip(ref, step, lo, hi, strict=True):
        if s > 0 and r + s > b:
            f = min(f, (b - r) / s)
        elif s < 0 and r + s < a:
            f = min(f, (a - r) / s)
    return max(0.0, f)


def _gripper(
    request: float, state: LimiterState, config: LimiterConfig, measured: float | None = None
) -> tuple[bool, int | None, bool]:
    """Hysteresis, dwell and the grip hold (`hold_grip`, on the `measured` reading).
    Returns (closed, cycles since change, request overruled)."""
    cycles = (
        None if state.cycles_since_gripper_change is None else state.cycles_since_gripper_change + 1
    )
    closed = state.gripper_closed
    if request > config.settings.gripper_band:
        wanted = True
    elif request < -config.settings.gripper_band:
        wanted = False
    else:
        wanted = closed
    band = config.settings.hold_grip
    if closed and not wanted and band is not None and measured is not None:
        wanted = band[0] <= measured <= band[1]  # holding something: stay closed
    if wanted != closed and (cycles is None or cycles >= config.settings.gripper_dwell):
        closed, cycles = wanted, 0
    # INTERFACE.md: > 0 close, <= 0 open. Anything else is the limiter's doing.
    return closed, cycles, closed != (request > 0)


def limit(
    q_measured: np.ndarray,
    action: np.ndarray,
    action_scale: np.ndarray,
    state: LimiterState,
    config: LimiterConfig,
    profile: RobotProfile,
    kin: Kinematics,
    gripper_measured: float | None = None,
) -> tuple[LimitResult, LimiterState]:
    """Decide this cycle's joint target and gripper. Pure: inputs are never modified."""
    n = len(profile.joints)
    # (1) A non-finite number anywhere is a fault, never a command.
    vectors, err = _inputs(q_measured, action, action_scale, state, n)
    if vectors is None:
        return _fault(err or "bad input", state)
    q, a, scale_vec, prev = vectors
    flags: set[LimitStatus] = set()

    # (2) The controller was trained on actions in [-1, 1]; anything outside is clipped.
    clipped = [_clip(x, -1.0, 1.0) for x in a]
    if clipped != a:
        flags.add(LimitStatus.ACTION_CLIPPED)
    requested = [x + c * k for x, c, k in zip(q, clipped[:n], scale_vec, strict=True)]

    max_step = config.max_step(profile).tolist()
    track_lo, track_hi = _band(q, max_step, config.settings.tracking_steps)
    ref = _reference(q, prev, track_lo, track_hi, flags)
    target, step, velocity_scale = _velocity(requested, ref, max_step, flags)
    target, step = _tracking(target, step, ref, track_lo, track_hi, flags)
    target, step = _joint_range(target, step, ref, profile, config.settings.joint_margin, flags)
    target_a = np.array(target, dtype=np.float64)
    ref_a = np.array(ref, dtype=np.float64)
    if config.floor is not None and any(x != 0 for x in step):
        step_a = np.array(step, dtype=np.float64)
        target_a = _floor(target_a, step_a, ref_a, config.floor, kin, flags)

    # (7) Gripper.
    closed, cycles, overruled = _gripper(float(clipped[n]), state, config, gripper_measured)
    if overruled:
        flags.add(LimitStatus.GRIPPER_HELD)

    status = next((s for s in _SEVERITY if s in flags), LimitStatus.OK)
    result = LimitResult(
        target=_frozen(target_a),
        gripper_closed=closed,
        requested=_frozen(np.array(requested, dtype=np.float64)),
        status=status,
        flags=frozenset(flags),
        limited=bool(flags),
        scale=velocity_scale,
        fault=None,
        reference=_frozen(ref_a),
    )
    new_state = LimiterState(
        prev_command=tuple(target_a.tolist()),
        gripper_closed=closed,
        cycles_since_gripper_change=cycles,
    )
    return result, new_state


_Vectors = tuple[Vec, Vec, Vec, Vec | None]


def _inputs(
    q_measured: object, action: object, action_scale: object, state: LimiterState, n: int
) -> tuple[_Vectors | None, str | None]:
    """(q, action, scale, previous command) as float lists, or why not."""
    q, err = _vector("q_measured", q_measured, n)
    if err:
        return None, err
    a, err = _vector("action", action, n + 1)
    if err:
        return None, err
    scale_vec, err = _vector("action_scale", action_scale, n)
    if err:
        return None, err
    prev = None
    if state.prev_command is not None:
        prev, err = _vector("previous command", state.prev_command, n)
        if err:
            return None, err
    assert q is not None and a is not None and scale_vec is not None
    return (q, a, scale_vec, prev), None


def _band(q: Vec, max_step: Vec, steps: float) -> tuple[Vec, Vec]:
    """The tracking band: `steps` largest steps either side of the measured position."""
    reach = [steps * m for m in max_step]
    return (
        [x - r for x, r in zip(q, reach, strict=True)],
        [x + r for x, r in zip(q, reach, strict=True)],
    )


def _reference(
    q: Vec, prev: Vec | None, track_lo: Vec, track_hi: Vec, flags: set[LimitStatus]
) -> Vec:
    """Where the step starts: the previous command, as in ros2_control's saturation
    limiter. If the arm has fallen more than `tracking_steps` behind it, the reference
    is pulled back within reach of the measured position first: that moves the command
    toward where the arm really is, which can only shrink the motion."""
    if prev is None:
        return list(q)
    ref = _clipped(prev, track_lo, track_hi)
    if ref != prev:
        flags.add(LimitStatus.TRACKING_CLAMPED)
    return ref


def _velocity(
    requested: Vec, ref: Vec, max_step: Vec, flags: set[LimitStatus]
) -> tuple[Vec, Vec, float]:
    """(3) Per-step change, all joints scaled by one factor so the direction is kept."""
    step = [r - f for r, f in zip(requested, ref, strict=True)]
    ratios = [m / abs(d) for d, m in zip(step, max_step, strict=True) if abs(d) > m]
    if not ratios:
        return list(requested), step, 1.0
    velocity_scale = min(ratios)
    step = [d * velocity_scale for d in step]
    flags.add(LimitStatus.VELOCITY_SCALED)
    return [f + d for f, d in zip(ref, step, strict=True)], step, velocity_scale


def _tracking(
    target: Vec, step: Vec, ref: Vec, track_lo: Vec, track_hi: Vec, flags: set[LimitStatus]
) -> tuple[Vec, Vec]:
    """(4) Tracking bound around the measured position, along the same direction."""
    if any(t > hi or t < lo for t, lo, hi in zip(target, track_lo, track_hi, strict=True)):
        f = _largest_fraction(ref, step, track_lo, track_hi)
        moved = [r + d * f for r, d in zip(ref, step, strict=True)]
        target = _clipped(moved, track_lo, track_hi)  # rounding only
        step = [t - r for t, r in zip(target, ref, strict=True)]
        flags.add(LimitStatus.TRACKING_CLAMPED)
    return target, step


def _joint_range(
    target: Vec,
    step: Vec,
    ref: Vec,
    profile: RobotProfile,
    margin: float,
    flags: set[LimitStatus],
) -> tuple[Vec, Vec]:
    """(5) Joint range with margin. A joint already outside the band (the arm started
    there, or a limit was changed) may move toward the inside but never further out."""
    lower = [float(x) + margin for x in profile.lower]
    upper = [float(x) - margin for x in profile.upper]
    lo = [min(a, r) if a != r else a for a, r in zip(lower, ref, strict=True)]
    hi = [max(b, r) if b != r else b for b, r in zip(upper, ref, strict=True)]
    bounded = _clipped(target, lo, hi)
    if bounded != target:
        target = bounded
        step = [t - r for t, r in zip(target, ref, strict=True)]
        flags.add(LimitStatus.JOINT_BOUND)
    return target, step


def _floor(
    target: np.ndarray,
    step: np.ndarray,
    ref: np.ndarray,
    floor: float,
    kin: Kinematics,
    flags: set[LimitStatus],
) -> np.ndarray:
    """(6) Floor: keep the wrist, hand and fingertips above the table."""
    target_low = kin.lowest_point_z(target)
    if target_low >= floor:
        return target
    ref_low = kin.lowest_point_z(ref)
    if ref_low >= floor:
        # Back off along the step to the largest fraction found safe. `lo` is always a
        # checked-safe fraction, so the result never crosses the floor. Its sideways
        # part goes too: sliding along the floor instead (the step projected onto the
        # floor's joint-space tangent) was measured with the reference controller at
        # +5 / +1 of 150 attempts (default / large gap, true masks) and not adopted:
        # that projection also moves the hand for a straight-down request. A slide
        # would need the Cartesian split.
        lo, hi = 0.0, 1.0
        for _ in range(FLOOR_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            if kin.lowest_point_z(ref + mid * step) >= floor:
                lo = mid
            else:
                hi = mid
        flags.add(LimitStatus.FLOOR)
        return ref + lo * step
    if target_low <= ref_low:
        # Already below the floor (e.g. a floor set above the start pose): only steps
        # that raise the lowest point are allowed; otherwise hold.
        flags.add(LimitStatus.FLOOR)
        return ref.copy()
    return target


class Limiter:
    """:func:`limit` with its state kept between cycles, for the loop."""

    def __init__(
        self,
        config: LimiterConfig,
        profile: RobotProfile,
        kin: Kinematics | None = None,
        state: LimiterState | None = None,
    ) -> None:
        config.check_profile(profile)
        self.config = config
        self.profile = profile
        self.kin = kin if kin is not None else Kinematics(profile)
        self.state = state if state is not None else LimiterState()

    def apply(
        self,
        q_measured: np.ndarray,
        action: np.ndarray,
        action_scale: np.ndarray,
        gripper_measured: float | None = None,
    ) -> LimitResult:
        """Limit one action. The state advances as if the target is sent; if it is not
        (the gate refused, the loop held), call :meth:`note_command` with None."""
        result, self.state = limit(
            q_measured, action, action_scale, self.state, self.config, self.profile, self.kin,
            gripper_measured,
        )  # fmt: skip
        return result

    def reset(
        self, q_measured: np.ndarray | None = None, gripper_closed: bool | None = None
    ) -> None:
        """Start afresh from a standstill: the next step starts from `q_measured` (None: from
        the next measurement). The gripper state is kept unless given, so a hold in the
        middle of a grasp cannot turn into an open; at an episode start, pass the measured
        gripper state."""
        prev = None if q_measured is None else tuple(float(x) for x in np.asarray(q_measured))
        if gripper_closed is None:
            self.state = replace(self.state, prev_command=prev)
        else:
            self.state = LimiterState(prev_command=prev, gripper_closed=gripper_closed)

    def note_command(self, target: np.ndarray | None, gripper_closed: bool | None = None) -> None:
        """Record what the robot was really told. None: it held where it was, so the next
        step starts from the measured position rather than from a command never sent."""
        prev = None if target is None else tuple(float(x) for x in np.asarray(target))
        state = replace(self.state, prev_command=prev)
        if gripper_closed is not None and gripper_closed != state.gripper_closed:
            state = replace(state, gripper_closed=gripper_closed, cycles_since_gripper_change=0)
        self.state = state
