"""The safety limiter: each rule on its own, then properties over random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grasprt.config import LimiterSettings
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER
from grasprt.runtime.limiter import (
    Limiter,
    LimiterConfig,
    LimiterState,
    LimitResult,
    LimitStatus,
    limit,
)

KIN = Kinematics(SAWYER)
NEUTRAL = np.array(SAWYER.neutral)
LOWER = np.array(SAWYER.lower)
UPPER = np.array(SAWYER.upper)
CFG = LimiterConfig()


def config_of(
    *, rate_hz: object = 10.0, floor: float | None = None, **settings: object
) -> LimiterConfig:
    """A limiter config from the settings' knobs, the rate and a floor height."""
    return LimiterConfig(LimiterSettings(**settings), rate_hz, floor)  # type: ignore[arg-type]


MAX_STEP = CFG.max_step(SAWYER)
SMALL_SCALE = np.full(7, 0.02)  # below every joint's max step (smallest: 0.0664 rad)
BIG_SCALE = np.full(7, 0.5)  # far above every max step
TOL = 1e-9


def action(*joints: float, gripper: float = -1.0) -> np.ndarray:
    a = np.zeros(8)
    a[: len(joints)] = joints
    a[7] = gripper
    return a


def run(
    q: np.ndarray,
    a: np.ndarray,
    scale: np.ndarray = SMALL_SCALE,
    state: LimiterState | None = None,
    **cfg: object,
) -> tuple[LimitResult, LimiterState]:
    config = config_of(**cfg) if cfg else CFG
    return limit(np.asarray(q, float), a, scale, state or LimiterState(), config, SAWYER, KIN)


# --- rules, one at a time -----------------------------------------------------------


def test_a_small_request_passes_unchanged() -> None:
    a = action(0.5, -0.3, 0.2, 0.1, -0.4, 0.9, -1.0)
    res, state = run(NEUTRAL, a)
    assert res.status == LimitStatus.OK
    assert not res.limited and res.flags == frozenset()
    assert res.fault is None and res.scale == 1.0
    np.testing.assert_array_equal(res.target, NEUTRAL + a[:7] * SMALL_SCALE)
    np.testing.assert_array_equal(res.target, res.requested)
    assert state.prev_command == tuple(res.target)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["q_measured", "action", "action_scale", "previous command"])
def test_a_non_finite_number_anywhere_is_a_fault_without_target(where: str, bad: float) -> None:
    q, a, scale = NEUTRAL.copy(), action(0.1), SMALL_SCALE.copy()
    state = LimiterState(prev_command=tuple(NEUTRAL), gripper_closed=True)
    if where == "q_measured":
        q[3] = bad
    elif where == "action":
        a[7] = bad
    elif where == "action_scale":
        scale[6] = bad
    else:
        prev = list(NEUTRAL)
        prev[2] = bad
        state = LimiterState(prev_command=tuple(prev), gripper_closed=True)
    res, new_state = run(q, a, scale, state)
    assert res.target is None and res.requested is None
    assert res.status == LimitStatus.FAULT and not res.ok
    assert res.fault.startswith(f"non-finite {where}")
    # The gripper stays as it was and the limiter's memory is untouched.
    assert res.gripper_closed is True
    assert new_state is state


@pytest.mark.parametrize(
    ("q", "a", "scale", "needle"),
    [
        (NEUTRAL[:6], action(0.1), SMALL_SCALE, "q_measured has 6 values"),
        (NEUTRAL, action(0.1)[:7], SMALL_SCALE, "action has 7 values"),
        (NEUTRAL, action(0.1), np.full(8, 0.02), "action_scale has 8 values"),
        (NEUTRAL, ["x"] * 8, SMALL_SCALE, "action is not a list of numbers"),
    ],
)
def test_a_wrongly_shaped_input_is_a_fault(
    q: np.ndarray, a: object, scale: np.ndarray, needle: str
) -> None:
    res, _ = run(q, a, scale)
    assert res.target is None
    assert needle in res.fault


def test_an_action_outside_the_unit_range_is_clipped() -> None:
    a = action(3.0, -2.0, gripper=5.0)
    res, _ = run(NEUTRAL, a)
    assert LimitStatus.ACTION_CLIPPED in res.flags and res.limited
    assert res.requested[0] == NEUTRAL[0] + SMALL_SCALE[0]
    assert res.requested[1] == NEUTRAL[1] - SMALL_SCALE[1]
    np.testing.assert_array_equal(res.target, res.requested)
    assert res.gripper_closed


def test_velocity_scaling_keeps_the_direction_with_one_factor() -> None:
    a = action(1.0, 0.5, -0.25, 0.1, 0.0, -1.0, 0.3)
    res, _ = run(NEUTRAL, a, BIG_SCALE)
    requested_step = a[:7] * BIG_SCALE
    step = res.target - NEUTRAL
    ratios = MAX_STEP[requested_step != 0] / np.abs(requested_step[requested_step != 0])
    assert res.scale == pytest.approx(float(ratios.min()))
    assert res.status == LimitStatus.VELOCITY_SCALED
    np.testing.assert_allclose(step, res.scale * requested_step, atol=1e-15)
    # The tightest joint gets exactly its max step; no joint gets more.
    assert np.max(np.abs(step) / MAX_STEP) == pytest.approx(1.0)
    assert np.all(np.abs(step) <= MAX_STEP + TOL)


def test_the_step_is_measured_from_the_previous_command() -> None:
    prev = NEUTRAL.copy()
    prev[0] += 2 * MAX_STEP[0]  # within the tracking bound (3 steps)
    res, _ = run(NEUTRAL, action(0.0), state=LimiterState(prev_command=tuple(prev)))
    # Asked to go back to the measured position; allowed one step back from prev.
    assert res.target[0] == pytest.approx(prev[0] - MAX_STEP[0])
    np.testing.assert_array_equal(res.reference, prev)
    assert LimitStatus.VELOCITY_SCALED in res.flags


def test_a_blocked_arm_is_not_wound_up() -> None:
    state = LimiterState()
    reach = CFG.settings.tracking_steps * MAX_STEP
    for _ in range(20):
        # The arm never moves; the controller keeps pushing joint 1 down at full speed.
        res, state = run(NEUTRAL, action(0.0, 1.0), BIG_SCALE, state)
        assert np.all(np.abs(res.target - NEUTRAL) <= reach + TOL)
    assert res.target[1] == pytest.approx(NEUTRAL[1] + reach[1])
    assert LimitStatus.TRACKING_CLAMPED in res.flags


def test_a_command_far_from_the_arm_is_pulled_back_within_reach() -> None:
    reach = CFG.settings.tracking_steps * MAX_STEP
    prev = NEUTRAL + 5 * MAX_STEP
    res, _ = run(NEUTRAL, action(0.0), state=LimiterState(prev_command=tuple(prev)))
    np.testing.assert_allclose(res.reference, NEUTRAL + reach)
    assert LimitStatus.TRACKING_CLAMPED in res.flags
    assert np.all(np.abs(res.target - NEUTRAL) <= reach + TOL)
    assert np.all(np.abs(res.target - res.reference) <= MAX_STEP + TOL)


def test_a_joint_stops_at_its_limit_minus_the_margin() -> None:
    q = NEUTRAL.copy()
    q[0] = UPPER[0] - CFG.settings.joint_margin - 0.01
    res, _ = run(q, action(1.0, 0.5), SMALL_SCALE)
    assert res.target[0] == UPPER[0] - CFG.settings.joint_margin
    assert res.target[1] == q[1] + 0.5 * SMALL_SCALE[1]  # other joints go on
    assert res.status == LimitStatus.JOINT_BOUND


def test_a_joint_outside_the_margin_may_only_move_back_in() -> None:
    q = NEUTRAL.copy()
    q[0] = LOWER[0] + 0.03  # inside the hard limit, outside the 0.1 rad margin
    out, _ = run(q, action(-1.0), SMALL_SCALE)
    assert out.target[0] == q[0]
    assert LimitStatus.JOINT_BOUND in out.flags
    back, _ = run(q, action(1.0), SMALL_SCALE)
    assert back.target[0] == q[0] + SMALL_SCALE[0]
    assert LimitStatus.JOINT_BOUND not in back.flags


def test_the_floor_stops_a_downward_step_just_above_it() -> None:
    floor = KIN.lowest_point_z(NEUTRAL) - 0.005
    # Joint 1 positive lowers the hand at the neutral pose (about 0.36 m/rad).
    res, _ = run(NEUTRAL, action(0.0, 1.0), BIG_SCALE, floor=floor)
    assert res.status == LimitStatus.FLOOR
    low = KIN.lowest_point_z(res.target)
    assert floor <= low < floor + 0.001
    # Backed off along the (velocity-limited) step, not sideways.
    step = res.target - NEUTRAL
    assert step[1] > 0 and np.count_nonzero(step) == 1
    unfloored, _ = run(NEUTRAL, action(0.0, 1.0), BIG_SCALE)
    assert step[1] < unfloored.target[1] - NEUTRAL[1]


def test_below_the_floor_only_steps_that_rise_are_allowed() -> None:
    floor = KIN.lowest_point_z(NEUTRAL) + 0.05
    down, _ = run(NEUTRAL, action(0.0, 1.0), SMALL_SCALE, floor=floor)
    np.testing.assert_array_equal(down.target, NEUTRAL)
    assert down.status == LimitStatus.FLOOR
    up, _ = run(NEUTRAL, action(0.0, -1.0), SMALL_SCALE, floor=floor)
    np.testing.assert_array_equal(up.target, up.requested)
    assert KIN.lowest_point_z(up.target) > KIN.lowest_point_z(NEUTRAL)
    assert LimitStatus.FLOOR not in up.flags


def test_no_floor_when_it_is_off() -> None:
    res, _ = run(NEUTRAL, action(0.0, 1.0), SMALL_SCALE, floor=None)
    np.testing.assert_array_equal(res.target, res.requested)


def test_status_names_the_most_serious_rule_and_flags_keep_them_all() -> None:
    floor = KIN.lowest_point_z(NEUTRAL) - 0.005
    res, _ = run(NEUTRAL, action(0.0, 2.0), BIG_SCALE, floor=floor)
    assert res.status == LimitStatus.FLOOR
    assert {LimitStatus.FLOOR, LimitStatus.VELOCITY_SCALED, LimitStatus.ACTION_CLIPPED} <= res.flags


def test_gripper_hysteresis_keeps_the_state_inside_the_band() -> None:
    state = LimiterState(gripper_closed=False)
    res, state = run(NEUTRAL, action(gripper=0.05), state=state)
    assert not res.gripper_closed and LimitStatus.GRIPPER_HELD in res.flags
    res, state = run(NEUTRAL, action(gripper=0.5), state=state)
    assert res.gripper_closed and LimitStatus.GRIPPER_HELD not in res.flags
    for _ in range(5):
        res, state = run(NEUTRAL, action(gripper=-0.05), state=state)
        assert res.gripper_closed  # slightly negative is not enough to open
    res, state = run(NEUTRAL, action(gripper=-0.5), state=state)
    assert not res.gripper_closed


def test_a_grip_on_something_stays_closed_until_the_fingers_shut_past_it() -> None:
    config = config_of(hold_grip=[0.5, 0.9])  # as a TOML file gives it
    assert config.settings.hold_grip == (0.5, 0.9)
    state = LimiterState(gripper_closed=True, cycles_since_gripper_change=10)

    def step(gripper: float | None, st: LimiterState) -> tuple[LimitResult, LimiterState]:
        return limit(NEUTRAL, action(gripper=-1.0), SMALL_SCALE, st, config, SAWYER, KIN, gripper)

    for _ in range(5):  # the fingers stopped on the sphere (0.671): the open is overruled
        res, state = step(0.671, state)
        assert res.gripper_closed and LimitStatus.GRIPPER_HELD in res.flags
    res, _ = step(0.99, state)  # shut past it: it slipped out, nothing is held
    assert not res.gripper_closed
    res, _ = step(None, state)  # a gripper that reports nothing: the request stands
    assert not res.gripper_closed
    res, _ = run(NEUTRAL, action(gripper=-1.0), state=state)  # the band off: the same
    assert not res.gripper_closed
    open_state = LimiterState(gripper_closed=False, cycles_since_gripper_change=10)
    res, _ = step(0.671, open_state)  # it never closes a gripper by itself
    assert not res.gripper_closed


def test_gripper_dwell_spaces_changes() -> None:
    state = LimiterState(gripper_closed=False)
    res, state = run(NEUTRAL, action(gripper=1.0), state=state)
    assert res.gripper_closed  # the first change of an episode is never delayed
    seen = []
    for _ in range(4):
        res, state = run(NEUTRAL, action(gripper=-1.0), state=state)
        seen.append(res.gripper_closed)
    # dwell 3: closed at cycle 0, may open at cycle 3 at the earliest.
    assert seen == [True, True, False, False]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_hz": 0},
        {"rate_hz": math.nan},
        {"rate_hz": "10"},
        {"velocity_factor": 0.0},
        {"velocity_factor": 1.5},
        {"joint_margin": -0.1},
        {"floor_z": math.inf},
        {"tracking_steps": 0.5},
        {"gripper_band": 1.0},
        {"gripper_band": -0.1},
        {"gripper_dwell": -1},
        {"gripper_dwell": 2.5},
        {"hold_grip": (0.9, 0.5)},
        {"hold_grip": (0.5,)},
        {"hold_grip": (-0.1, 0.9)},
        {"hold_grip": (0.5, math.nan)},
    ],
)
def test_nonsense_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        config_of(**kwargs)


def test_a_margin_that_leaves_no_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="right_j4"):
        Limiter(config_of(joint_margin=3.0), SAWYER, KIN)


def test_limiter_carries_its_state_between_cycles() -> None:
    lim = Limiter(CFG, SAWYER, KIN)
    first = lim.apply(NEUTRAL, action(1.0), BIG_SCALE)
    assert first.target[0] == pytest.approx(NEUTRAL[0] + MAX_STEP[0])
    # The arm has not moved yet; the next step starts from the first command.
    second = lim.apply(NEUTRAL, action(1.0), BIG_SCALE)
    np.testing.assert_array_equal(second.reference, first.target)
    assert second.target[0] == pytest.approx(NEUTRAL[0] + 2 * MAX_STEP[0])


def test_note_command_none_restarts_from_the_measured_position() -> None:
    lim = Limiter(CFG, SAWYER, KIN)
    lim.apply(NEUTRAL, action(1.0), BIG_SCALE)
    lim.note_command(None)
    res = lim.apply(NEUTRAL, action(1.0), BIG_SCALE)
    np.testing.assert_array_equal(res.reference, NEUTRAL)


def test_note_command_records_a_gripper_change_for_the_dwell() -> None:
    lim = Limiter(CFG, SAWYER, KIN)
    lim.note_command(NEUTRAL, gripper_closed=True)
    res = lim.apply(NEUTRAL, action(gripper=-1.0), SMALL_SCALE)
    assert res.gripper_closed  # changed one cycle ago: dwell holds it


def test_reset_keeps_the_gripper_unless_told() -> None:
    lim = Limiter(CFG, SAWYER, KIN)
    lim.apply(NEUTRAL, action(gripper=1.0), SMALL_SCALE)
    q = NEUTRAL + 0.01
    lim.reset(q)
    assert lim.state.gripper_closed and lim.state.prev_command == tuple(q)
    lim.reset(None, gripper_closed=False)
    assert lim.state == LimiterState()


def test_results_cannot_be_changed_after_the_fact() -> None:
    res, _ = run(NEUTRAL, action(0.1))
    with pytest.raises(ValueError):
        res.target[0] = 0.0


# --- properties ---------------------------------------------------------------------
# deadline=None: no test here asserts a duration (the CI machine is small and noisy).
# database=None: nothing is written into the checkout.

FLOATS = {"allow_nan": False, "allow_infinity": False}


@st.composite
def cases(
    draw: st.DrawFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LimiterState, LimiterConfig]:
    q = np.array(
        [draw(st.floats(lo - 0.2, hi + 0.2, **FLOATS)) for lo, hi in zip(LOWER, UPPER, strict=True)]
    )
    a = np.array(draw(st.lists(st.floats(-1.3, 1.3, **FLOATS), min_size=8, max_size=8)))
    scale = np.array(draw(st.lists(st.floats(0, 0.6, **FLOATS), min_size=7, max_size=7)))
    prev = None
    if draw(st.booleans()):
        offsets = draw(st.lists(st.floats(-6, 6, **FLOATS), min_size=7, max_size=7))
        prev = tuple(float(x) for x in q + np.array(offsets) * MAX_STEP)
    cycles = draw(st.none() | st.integers(0, 6))
    state = LimiterState(prev, draw(st.booleans()), cycles)
    floor = None
    if draw(st.booleans()):
        floor = KIN.lowest_point_z(q) + draw(st.floats(-0.03, 0.02, **FLOATS))
    config = config_of(
        floor=floor,
        joint_margin=draw(st.sampled_from([0.0, 0.1, 0.3])),
        tracking_steps=draw(st.sampled_from([1.0, 3.0, 5.0])),
    )
    return q, a, scale, state, config


@settings(max_examples=300, deadline=None, database=None)
@given(cases())
def test_property_every_target_is_safe(case: tuple) -> None:
    q, a, scale, state, config = case
    copies = [x.copy() for x in (q, a, scale)]
    res, new_state = limit(q, a, scale, state, config, SAWYER, KIN)

    # Purity: inputs untouched, the same call gives the same answer.
    for before, after in zip(copies, (q, a, scale), strict=True):
        np.testing.assert_array_equal(before, after)
    again, again_state = limit(q, a, scale, state, config, SAWYER, KIN)
    np.testing.assert_array_equal(again.target, res.target)
    assert again.flags == res.flags and again_state == new_state

    target, ref = res.target, res.reference
    max_step = config.max_step(SAWYER)
    reach = config.settings.tracking_steps * max_step
    assert res.fault is None and target.shape == (7,) and np.all(np.isfinite(target))
    assert new_state.prev_command == tuple(target)

    # The reference is the previous command, moved only toward the arm when too far.
    assert np.all(np.abs(ref - q) <= reach + TOL)
    if state.prev_command is None:
        np.testing.assert_array_equal(ref, q)
    else:
        prev = np.array(state.prev_command)
        near = np.abs(prev - q) <= reach
        np.testing.assert_array_equal(ref[near], prev[near])
        assert np.all(np.abs(ref - q) <= np.abs(prev - q) + TOL)

    # Step and tracking bounds.
    assert np.all(np.abs(target - ref) <= max_step + TOL)
    assert np.all(np.abs(target - q) <= reach + TOL)

    # Joint range with margin, or moving toward it from outside.
    lo = LOWER + config.settings.joint_margin
    hi = UPPER - config.settings.joint_margin
    assert np.all(target >= np.minimum(lo, ref) - TOL)
    assert np.all(target <= np.maximum(hi, ref) + TOL)

    # Direction kept unless a joint was clipped at its range.
    if LimitStatus.JOINT_BOUND not in res.flags:
        want = res.requested - ref
        got = target - ref
        norm2 = float(want @ want)
        if norm2 > 0:
            f = float(got @ want) / norm2
            assert -TOL <= f <= 1 + TOL
            np.testing.assert_allclose(got, f * want, atol=1e-9)
        else:
            np.testing.assert_allclose(got, 0.0, atol=1e-12)

    # The floor is never crossed downward.
    if config.floor is not None:
        ref_low = KIN.lowest_point_z(ref)
        low = KIN.lowest_point_z(target)
        if ref_low >= config.floor:
            assert low >= config.floor
        else:
            assert low >= ref_low - 1e-12

    # "Not limited" means exactly what was asked.
    if not res.limited:
        np.testing.assert_array_equal(target, res.requested)
        assert res.gripper_closed == (a[7] > 0)
        assert res.status == LimitStatus.OK


@settings(max_examples=200, deadline=None, database=None)
@given(
    cases(),
    st.sampled_from(["q", "a", "scale", "prev"]),
    st.integers(0, 7),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_property_non_finite_anywhere_is_a_fault(
    case: tuple, where: str, index: int, bad: float
) -> None:
    q, a, scale, state, config = case
    if where == "q":
        q[index % 7] = bad
    elif where == "a":
        a[index] = bad
    elif where == "scale":
        scale[index % 7] = bad
    else:
        prev = list(state.prev_command or q)
        prev[index % 7] = bad
        state = LimiterState(tuple(prev), state.gripper_closed, state.cycles_since_gripper_change)
    res, new_state = limit(q, a, scale, state, config, SAWYER, KIN)
    assert res.target is None and res.status == LimitStatus.FAULT
    assert res.fault.startswith("non-finite")
    assert new_state == state


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.floats(-1.5, 1.5, **FLOATS), min_size=1, max_size=40), st.integers(0, 5))
def test_property_gripper_changes_follow_clear_requests_and_keep_the_dwell(
    requests: list[float], dwell: int
) -> None:
    config = config_of(gripper_dwell=dwell)
    state = LimiterState()
    closed = False
    last_change = None
    for i, r in enumerate(requests):
        res, state = limit(NEUTRAL, action(gripper=r), SMALL_SCALE, state, config, SAWYER, KIN)
        if res.gripper_closed != closed:
            # Only a request past the band in that direction changes the gripper...
            assert (
                (r > config.settings.gripper_band)
                if res.gripper_closed
                else (r < -config.settings.gripper_band)
            )
            # ...and never sooner than `dwell` cycles after the last change.
            assert last_change is None or i - last_change >= dwell
            last_change = i
        closed = res.gripper_closed
