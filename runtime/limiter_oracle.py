"""An oracle for the limiter that shares no code with it nor with grasprt.kinematics.

Everything here is written again from ``../shared/REFERENCE.md`` (Rethink's
``sawyer_base.urdf.xacro``): the joint origins, limits and velocities are typed in
below, not read from grasprt.profiles, and the forward kinematics composes axis-angle
rotations (Rodrigues' formula) over whole batches with numpy, where grasprt.kinematics
multiplies roll-pitch-yaw matrices one pose at a time. `grasprt fuzz-limiter` checks
each of the limiter's targets against it; a disagreement between the two FKs shows as a
floor violation, so the oracle is itself checked against the profile at start-up
(:func:`check_profile_numbers`).

What the oracle asserts of a limited target (the safety properties, not the algorithm):

    fault      a non-finite input gives a fault and no target; a finite one never does
    step       |target - reference| <= v_max * velocity_factor / rate, the reference
               being the previous command pulled within the tracking bound of the
               measured position (the measured position when there is none)
    tracking   |target - q_measured| <= tracking_steps * max step
    range      target inside [lower + margin, upper - margin], or, for a joint already
               outside, no further out than its reference
    floor      the lowest of wrist (right_l4, right_l5), hand and fingertips stays at or
               above the floor height, or, from below it, does not sink further
    gripper    a change only on a request beyond the band, and only after the dwell
"""

from __future__ import annotations

import math

import numpy as np

HALF_PI = math.pi / 2
# REFERENCE.md, Rethink Sawyer: joint origin xyz (m), rpy (rad, fixed axes: roll about
# x, then pitch about the fixed y, then yaw about the fixed z), limits (rad), velocity.
SAWYER_JOINTS = (
    ((0.0, 0.0, 0.08), (0.0, 0.0, 0.0), -3.0503, 3.0503, 1.74),
    ((0.081, 0.05, 0.237), (-HALF_PI, HALF_PI, 0.0), -3.8095, 2.2736, 1.328),
    ((0.0, -0.14, 0.1425), (HALF_PI, 0.0, 0.0), -3.0426, 3.0426, 1.957),
    ((0.0, -0.042, 0.26), (-HALF_PI, 0.0, 0.0), -3.0439, 3.0439, 1.957),
    ((0.0, -0.125, -0.1265), (HALF_PI, 0.0, 0.0), -2.9761, 2.9761, 3.485),
    ((0.0, 0.031, 0.275), (-HALF_PI, 0.0, 0.0), -2.9761, 2.9761, 3.485),
    ((0.0, -0.11, 0.1053), (-HALF_PI, -0.17453, 3.1416), -4.7124, 4.7124, 4.545),
)
HAND_XYZ, HAND_RPY = (0.0, 0.0, 0.0245), (0.0, 0.0, HALF_PI)
FINGERTIPS = 0.13562  # beyond right_hand along its z (standard narrow fingers)
LOWER = np.array([j[2] for j in SAWYER_JOINTS])
UPPER = np.array([j[3] for j in SAWYER_JOINTS])
VELOCITY = np.array([j[4] for j in SAWYER_JOINTS])
WRIST_LINKS = (4, 5)  # right_l4, right_l5
# The two FKs agree to ~1e-15 m; this is the slack a floor check allows.
FK_TOL = 1e-9


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotations about one unit axis by a batch of angles: (B, 3, 3), Rodrigues."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    s = np.sin(angle)[:, None, None]
    c = np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def fixed_rotation(rpy: tuple[float, float, float]) -> np.ndarray:
    """One URDF origin's rotation, from its three axis-angle turns in their order."""
    one = np.ones(1)
    r = axis_angle(np.array([1.0, 0.0, 0.0]), rpy[0] * one)[0]
    p = axis_angle(np.array([0.0, 1.0, 0.0]), rpy[1] * one)[0]
    y = axis_angle(np.array([0.0, 0.0, 1.0]), rpy[2] * one)[0]
    # Fixed axes: roll is applied first, so it stands rightmost.
    return y @ p @ r


_ORIGINS = [(np.array(xyz), fixed_rotation(rpy)) for xyz, rpy, *_ in SAWYER_JOINTS]
_HAND = (np.array(HAND_XYZ), fixed_rotation(HAND_RPY))
_Z = np.array([0.0, 0.0, 1.0])


def guarded_points(q: np.ndarray) -> np.ndarray:
    """(B, 4, 3): right_l4, right_l5, right_hand and the fingertips in the base frame."""
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    b = q.shape[0]
    rot = np.broadcast_to(np.eye(3), (b, 3, 3)).copy()
    pos = np.zeros((b, 3))
    wrist = []
    for i, (xyz, fixed) in enumerate(_ORIGINS):
        pos = pos + rot @ xyz
        rot = rot @ fixed @ axis_angle(_Z, q[:, i])
        if i in WRIST_LINKS:
            wrist.append(pos)
    hand_pos = pos + rot @ _HAND[0]
    hand_rot = rot @ _HAND[1]
    tips = hand_pos + FINGERTIPS * hand_rot[:, :, 2]
    return np.stack([*wrist, hand_pos, tips], axis=1)


def lowest_z(q: np.ndarray) -> np.ndarray:
    return guarded_points(q)[:, :, 2].min(axis=1)


def check_profile_numbers(lower: object, upper: object, velocity: object) -> None:
    """The limiter's profile must be the robot this oracle knows; else it judges nothing."""
    for name, mine, theirs in (("lower", LOWER, lower), ("upper", UPPER, upper)):
        if not np.array_equal(mine, np.asarray(theirs, dtype=np.float64)):
            raise ValueError(f"profile {name} limits differ from REFERENCE.md's")
    if not np.array_equal(VELOCITY, np.asarray(velocity, dtype=np.float64)):
        raise ValueError("profile velocities differ from REFERENCE.md's")


def expected_reference(
    q: np.ndarray, prev: np.ndarray, has_prev: np.ndarray, reach: np.ndarray
) -> np.ndarray:
    """Where each step starts: the previous command within reach of q, else q."""
    pulled = np.minimum(np.maximum(prev, q - reach), q + reach)
    return np.where(has_prev[:, None], pulled, q)


def violations(batch: dict[str, np.ndarray], tol: float = 1e-9) -> dict[str, np.ndarray]:
    """Per check, a (B,) bool array: True where the limiter's answer breaks it.

    `batch` holds the inputs (q, action, scale, prev, has_prev, closed, cycles (-1:
    none), and per case the config: factor, rate, margin, tracking, band, dwell,
    floor (NaN: none)) and the answers (fault, target (NaN rows on a fault),
    gripper_closed)."""
    q, a, scale, prev = batch["q"], batch["action"], batch["scale"], batch["prev"]
    has_prev, fault, target = batch["has_prev"], batch["fault"], batch["target"]
    finite = (
        np.isfinite(q).all(1)
        & np.isfinite(a).all(1)
        & np.isfinite(scale).all(1)
        & (np.isfinite(prev).all(1) | ~has_prev)
    )
    out = {"fault": fault == finite}  # a fault exactly when some input is not finite
    ok = ~fault & finite
    out["target_finite"] = ok & ~np.isfinite(target).all(1)
    tq, tt = np.where(ok[:, None], q, 0.0), np.where(ok[:, None], target, 0.0)
    max_step = VELOCITY[None, :] * batch["factor"][:, None] / batch["rate"][:, None]
    reach = batch["tracking"][:, None] * max_step
    ref = expected_reference(tq, np.where(ok[:, None], prev, 0.0), has_prev, reach)
    out["step"] = ok & (np.abs(tt - ref) > max_step + tol).any(1)
    out["tracking"] = ok & (np.abs(tt - tq) > reach + tol).any(1)
    lo = LOWER[None, :] + batch["margin"][:, None]
    hi = UPPER[None, :] - batch["margin"][:, None]
    out["range"] = ok & ((tt < np.minimum(lo, ref) - tol) | (tt > np.maximum(hi, ref) + tol)).any(1)
    out["floor"] = _floor_violations(ok, ref, tt, batch["floor"])
    out["gripper"] = _gripper_violations(batch, ok)
    return out


def _floor_violations(
    ok: np.ndarray, ref: np.ndarray, target: np.ndarray, floor: np.ndarray
) -> np.ndarray:
    bad = np.zeros(ok.shape, dtype=bool)
    idx = np.flatnonzero(ok & np.isfinite(floor))
    if idx.size == 0:
        return bad
    ref_low, low, f = lowest_z(ref[idx]), lowest_z(target[idx]), floor[idx]
    above = ref_low >= f
    bad[idx] = np.where(above, low < f - FK_TOL, low < ref_low - FK_TOL)
    return bad


def _gripper_violations(batch: dict[str, np.ndarray], ok: np.ndarray) -> np.ndarray:
    request = np.clip(np.where(ok, batch["action"][:, -1], 0.0), -1.0, 1.0)
    was, now = batch["closed"], batch["gripper_closed"]
    cycles = batch["cycles"]
    dwell_done = (cycles < 0) | (cycles + 1 >= batch["dwell"])
    band = batch["band"]
    wants_close, wants_open = request > band, request < -band
    wanted = np.where(wants_close, True, np.where(wants_open, False, was))
    should = np.where(dwell_done, wanted, was)
    return ok & (now != should)
