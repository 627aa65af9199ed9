"""Robot profiles: joint names, kinematic chain, limits, camera mount, gripper geometry.

The Sawyer figures are Rethink's published URDF (sawyer_description,
``sawyer_base.urdf.xacro``) and intera_common's electric gripper; see
``../shared/REFERENCE.md``. The URDF has no soft limits, so margins are ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grasprt.errors import ConfigError


@dataclass(frozen=True)
class JointSpec:
    name: str
    xyz: tuple[float, float, float]  # joint origin in the parent link
    rpy: tuple[float, float, float]  # fixed-axis roll, pitch, yaw; R = Rz(y) Ry(p) Rx(r)
    lower: float  # rad
    upper: float  # rad
    velocity: float  # rad/s
    effort: float  # N m
    # Every Sawyer joint turns about its own z axis.


@dataclass(frozen=True)
class FixedFrame:
    parent_joint_index: int  # the frame rides on the child link of this joint (0-based)
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]


@dataclass(frozen=True)
class GripperSpec:
    # Distance along the hand's z axis from `hand` to the fingertips.
    fingertip_offset: float
    # Full travel of the gap between the fingers, metres (0 = closed).
    max_opening: float
    finger_width: float  # across the finger, metres
    finger_length: float  # the part of the finger that can hold an object, metres
    close_time: float  # seconds from fully open to fully closed


@dataclass(frozen=True)
class RobotProfile:
    name: str
    base_link: str
    joints: tuple[JointSpec, ...]
    hand: FixedFrame
    # The wrist camera's body frame as the URDF places it ...
    camera: FixedFrame
    # ... and the rotation from the image's optical frame (z forward, x right, y down)
    # to that body frame, row by row: where the URDF's camera link looks.
    camera_optical: tuple[tuple[float, float, float], ...]
    gripper: GripperSpec
    neutral: tuple[float, ...]
    # The links (0-based joint indices, their child links' origins) the floor guards
    # besides the hand and fingertips: the wrist, which hangs lowest when the hand
    # tilts.
    floor_links: tuple[int, ...] = ()

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def lower(self) -> tuple[float, ...]:
        return tuple(j.lower for j in self.joints)

    @property
    def upper(self) -> tuple[float, ...]:
        return tuple(j.upper for j in self.joints)

    @property
    def velocity(self) -> tuple[float, ...]:
        return tuple(j.velocity for j in self.joints)


_PI = math.pi

SAWYER = RobotProfile(
    name="sawyer",
    base_link="right_arm_base_link",
    joints=(
        JointSpec("right_j0", (0.0, 0.0, 0.08), (0.0, 0.0, 0.0), -3.0503, 3.0503, 1.74, 80.0),
        JointSpec(
            "right_j1", (0.081, 0.05, 0.237), (-_PI / 2, _PI / 2, 0.0), -3.8095, 2.2736, 1.328, 80.0
        ),
        JointSpec(
            "right_j2", (0.0, -0.14, 0.1425), (_PI / 2, 0.0, 0.0), -3.0426, 3.0426, 1.957, 40.0
        ),
        JointSpec(
            "right_j3", (0.0, -0.042, 0.26), (-_PI / 2, 0.0, 0.0), -3.0439, 3.0439, 1.957, 40.0
        ),
        JointSpec(
            "right_j4", (0.0, -0.125, -0.1265), (_PI / 2, 0.0, 0.0), -2.9761, 2.9761, 3.485, 9.0
        ),
        JointSpec(
            "right_j5", (0.0, 0.031, 0.275), (-_PI / 2, 0.0, 0.0), -2.9761, 2.9761, 3.485, 9.0
        ),
        JointSpec(
            "right_j6",
            (0.0, -0.11, 0.1053),
            (-_PI / 2, -0.17453, 3.1416),
            -4.7124,
            4.7124,
            4.545,
            9.0,
        ),
    ),
    # right_hand on right_l6; right_hand_camera on right_l5.
    hand=FixedFrame(6, (0.0, 0.0, 0.0245), (0.0, 0.0, _PI / 2)),
    camera=FixedFrame(5, (0.039552, -0.033, 0.0695), (0.0, _PI / 2, 0.0)),
    # The hand camera looks along the gripper, -y of right_hand_camera (at the neutral
    # pose: straight down). Check it against the real mount with `grasprt view` before
    # trusting a new arm.
    camera_optical=((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
    gripper=GripperSpec(
        fingertip_offset=0.13562,
        max_opening=0.041667,
        finger_width=0.012,
        finger_length=0.02,
        close_time=0.4,
    ),
    neutral=(0.0, -1.18, 0.0, 2.18, 0.0, 0.57, 3.3161),
    # right_l4 and right_l5: the wrist.
    floor_links=(4, 5),
)

PROFILES: dict[str, RobotProfile] = {"sawyer": SAWYER}


def get_profile(name: str) -> RobotProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown robot profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
