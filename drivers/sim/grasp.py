"""What closing the gripper does to the sphere: grasp it, bump it, or miss it.

Geometry in the hand frame (the profile's GripperSpec): z is the approach direction,
the fingertip point lies `fingertip_offset` along it, and the fingers close along the
hand's y axis (as the electric gripper's prismatic fingers do), each finger pad
`finger_width` wide along x and `finger_length` long up from the tips. The decision is
made at the moment the closing gap reaches the sphere's diameter.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from grasprt.profiles import GripperSpec

# How far beyond the pads a closing finger still touches (pushes) the sphere.
_BUMP_REACH = 0.006
# A centre this little below the tips still holds: the pads' rounded ends grip past it.
_BELOW_TIPS = 0.002


class CloseOutcome(Enum):
    GRASP = "grasp"  # the sphere is between the pads: the fingers stop on it
    BUMP = "bump"  # a finger hits it and pushes it away a little
    MISS = "miss"


def sphere_in_fingers(hand: np.ndarray, spec: GripperSpec, centre: np.ndarray) -> np.ndarray:
    """The sphere centre relative to the fingertip point, in hand axes (x, y, z)."""
    rel = hand[:3, :3].T @ (np.asarray(centre) - hand[:3, 3])
    rel[2] -= spec.fingertip_offset
    return rel


def classify_close(
    hand: np.ndarray, spec: GripperSpec, centre: np.ndarray, radius: float
) -> CloseOutcome:
    x, y, z = sphere_in_fingers(hand, spec, centre)
    # Between the open fingers (they centre it as they close), within the pad's width,
    # and not below the tips (else it slips out under them) nor above the pads.
    fits = abs(y) <= spec.max_opening / 2.0 - radius
    if fits and abs(x) <= spec.finger_width / 2.0 and -spec.finger_length <= z <= _BELOW_TIPS:
        return CloseOutcome.GRASP
    near_x = abs(x) <= spec.finger_width / 2.0 + radius + _BUMP_REACH
    near_y = abs(y) <= spec.max_opening / 2.0 + radius + _BUMP_REACH
    near_z = -spec.finger_length - radius <= z <= radius + _BUMP_REACH
    return CloseOutcome.BUMP if near_x and near_y and near_z else CloseOutcome.MISS


def closed_on_sphere(spec: GripperSpec, diameter: float) -> float:
    """Gripper position (0 open, 1 closed) at which the fingers rest on the sphere."""
    return float(np.clip(1.0 - diameter / spec.max_opening, 0.0, 1.0))
