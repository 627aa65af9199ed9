"""grasprt.kinematics against a second forward kinematics that shares nothing with it.

The limiter's table floor rests on ``Kinematics.poses`` and ``lowest_point_z``. Here the
Sawyer's chain is written out again as URDF elements, transcribed from
``../shared/REFERENCE.md`` (Rethink's ``sawyer_base.urdf.xacro``), not from
grasprt.profiles; it is parsed with xml.etree and composed with unit quaternions in
plain Python (no numpy, no rotation matrices), then compared at 1e-9 m / 1e-9.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import pytest

from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER

HALF_PI = "1.5707963267948966"  # REFERENCE.md's pi/2
# Rethink's file rounds pi/2 to 1.57079632679 in the joints (5e-12 rad, invisible at
# 1e-9) and to 1.570796 in right_hand (3.3e-7 rad): see the last test.
URDF_HAND_YAW = "1.570796"

SAWYER_URDF = f"""
<robot name="sawyer">
  <joint name="right_j0" type="revolute">
    <origin xyz="0 0 0.08" rpy="0 0 0"/>
    <parent link="right_arm_base_link"/><child link="right_l0"/><axis xyz="0 0 1"/>
    <limit lower="-3.0503" upper="3.0503" velocity="1.74" effort="80"/>
  </joint>
  <joint name="right_j1" type="revolute">
    <origin xyz="0.081 0.05 0.237" rpy="-{HALF_PI} {HALF_PI} 0"/>
    <parent link="right_l0"/><child link="right_l1"/><axis xyz="0 0 1"/>
    <limit lower="-3.8095" upper="2.2736" velocity="1.328" effort="80"/>
  </joint>
  <joint name="right_j2" type="revolute">
    <origin xyz="0 -0.14 0.1425" rpy="{HALF_PI} 0 0"/>
    <parent link="right_l1"/><child link="right_l2"/><axis xyz="0 0 1"/>
    <limit lower="-3.0426" upper="3.0426" velocity="1.957" effort="40"/>
  </joint>
  <joint name="right_j3" type="revolute">
    <origin xyz="0 -0.042 0.26" rpy="-{HALF_PI} 0 0"/>
    <parent link="right_l2"/><child link="right_l3"/><axis xyz="0 0 1"/>
    <limit lower="-3.0439" upper="3.0439" velocity="1.957" effort="40"/>
  </joint>
  <joint name="right_j4" type="revolute">
    <origin xyz="0 -0.125 -0.1265" rpy="{HALF_PI} 0 0"/>
    <parent link="right_l3"/><child link="right_l4"/><axis xyz="0 0 1"/>
    <limit lower="-2.9761" upper="2.9761" velocity="3.485" effort="9"/>
  </joint>
  <joint name="right_j5" type="revolute">
    <origin xyz="0 0.031 0.275" rpy="-{HALF_PI} 0 0"/>
    <parent link="right_l4"/><child link="right_l5"/><axis xyz="0 0 1"/>
    <limit lower="-2.9761" upper="2.9761" velocity="3.485" effort="9"/>
  </joint>
  <joint name="right_j6" type="revolute">
    <origin xyz="0 -0.11 0.1053" rpy="-{HALF_PI} -0.17453 3.1416"/>
    <parent link="right_l5"/><child link="right_l6"/><axis xyz="0 0 1"/>
    <limit lower="-4.7124" upper="4.7124" velocity="4.545" effort="9"/>
  </joint>
  <joint name="right_hand" type="fixed">
    <origin xyz="0 0 0.0245" rpy="0 0 {{hand_yaw}}"/>
    <parent link="right_l6"/><child link="right_hand"/>
  </joint>
  <joint name="right_hand_camera" type="fixed">
    <origin xyz="0.039552 -0.033 0.0695" rpy="0 {HALF_PI} 0"/>
    <parent link="right_l5"/><child link="right_hand_camera"/>
  </joint>
</robot>
"""
# intera_common's electric gripper with standard narrow fingers: the point between the
# fingertips lies this far along right_hand's z axis.
FINGERTIP_OFFSET = 0.13562
ARM_JOINTS = [f"right_j{i}" for i in range(7)]

Vec = tuple[float, float, float]
Quat = tuple[float, float, float, float]  # (w, x, y, z), unit


def q_mul(a: Quat, b: Quat) -> Quat:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def q_axis(axis: int, angle: float) -> Quat:
    v = [0.0, 0.0, 0.0]
    v[axis] = math.sin(angle / 2)
    return (math.cos(angle / 2), v[0], v[1], v[2])


def q_rpy(roll: float, pitch: float, yaw: float) -> Quat:
    # URDF's fixed-axis rpy: about x first, then the fixed y, then the fixed z.
    return q_mul(q_axis(2, yaw), q_mul(q_axis(1, pitch), q_axis(0, roll)))


def q_rotate(q: Quat, v: Vec) -> Vec:
    _, x, y, z = q_mul(q_mul(q, (0.0, *v)), (q[0], -q[1], -q[2], -q[3]))
    return (x, y, z)


@dataclass(frozen=True)
class Pose:
    pos: Vec
    rot: Quat

    def then(self, other: Pose) -> Pose:
        moved = q_rotate(self.rot, other.pos)
        pos = (self.pos[0] + moved[0], self.pos[1] + moved[1], self.pos[2] + moved[2])
        return Pose(pos, q_mul(self.rot, other.rot))

    def axis(self, i: int) -> Vec:
        unit = [0.0, 0.0, 0.0]
        unit[i] = 1.0
        return q_rotate(self.rot, (unit[0], unit[1], unit[2]))

    def matrix(self) -> np.ndarray:
        """4x4, built column by column from the rotated unit axes (for comparison only)."""
        m = np.eye(4)
        for i in range(3):
            m[:3, i] = self.axis(i)
        m[:3, 3] = self.pos
        return m


IDENTITY = Pose((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))


def numbers(text: str) -> Vec:
    a, b, c = (float(s) for s in text.split())
    return (a, b, c)


class UrdfChain:
    """Every link's pose in the base frame, found by walking parent -> child."""

    def __init__(self, hand_yaw: str = HALF_PI) -> None:
        root = ET.fromstring(SAWYER_URDF.replace("{hand_yaw}", hand_yaw))
        self.joints = {j.get("name"): j for j in root.iter("joint")}

    def link_poses(self, q: dict[str, float]) -> dict[str, Pose]:
        poses = {"right_arm_base_link": IDENTITY}
        pending = list(self.joints.values())
        while pending:
            joint = next(j for j in pending if j.find("parent").get("link") in poses)
            pending.remove(joint)
            origin = joint.find("origin")
            step = Pose(numbers(origin.get("xyz")), q_rpy(*numbers(origin.get("rpy"))))
            if joint.get("type") == "revolute":
                step = step.then(Pose((0.0, 0.0, 0.0), q_axis(2, q[joint.get("name")])))
            parent = poses[joint.find("parent").get("link")]
            poses[joint.find("child").get("link")] = parent.then(step)
        return poses

    def limits(self, name: str) -> dict[str, float]:
        return {k: float(v) for k, v in self.joints[name].find("limit").attrib.items()}


def fingertips(hand: Pose) -> Vec:
    (x, y, z), (ax, ay, az) = hand.pos, hand.axis(2)
    return (x + FINGERTIP_OFFSET * ax, y + FINGERTIP_OFFSET * ay, z + FINGERTIP_OFFSET * az)


def optical(camera_body: Pose) -> np.ndarray:
    """The image frame grasprt projects with, stated here on its own: z (the viewing
    direction) is right_hand_camera's -y, x its x, y (down the image) its z."""
    x, y, z = (np.array(camera_body.axis(i)) for i in range(3))
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = x, z, -y
    m[:3, 3] = camera_body.pos
    return m


def random_poses(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(20240611)
    return [rng.uniform(SAWYER.lower, SAWYER.upper) for _ in range(n)]


POSES = {"zero": np.zeros(7), "neutral": np.array(SAWYER.neutral)}
POSES.update({f"random{i}": q for i, q in enumerate(random_poses(50))})


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics(SAWYER)


@pytest.mark.parametrize("q", list(POSES.values()), ids=list(POSES))
def test_grasprt_matches_the_urdf_chain(kin: Kinematics, q: np.ndarray) -> None:
    links = UrdfChain().link_poses(dict(zip(ARM_JOINTS, q.tolist(), strict=True)))
    got = kin.poses(q)
    for i, link in enumerate(got.links):
        np.testing.assert_allclose(link, links[f"right_l{i}"].matrix(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.hand, links["right_hand"].matrix(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.fingertips, fingertips(links["right_hand"]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.camera, optical(links["right_hand_camera"]), rtol=0, atol=1e-9)
    guarded = [links["right_l4"].pos, links["right_l5"].pos, links["right_hand"].pos]
    lowest = min(p[2] for p in [*guarded, fingertips(links["right_hand"])])
    assert kin.lowest_point_z(q) == pytest.approx(lowest, abs=1e-9)


@pytest.mark.parametrize("q", list(POSES.values())[:12], ids=list(POSES)[:12])
def test_the_camera_looks_along_the_gripper(kin: Kinematics, q: np.ndarray) -> None:
    # What makes the optical convention right: the wrist camera's view direction is the
    # hand's approach axis (right_l6's z is right_l5's -y, the camera's -y is too), but
    # for the URDF's 3.1416 in place of pi, which tilts the hand by sin(3.1416) = -7.3e-6.
    got = kin.poses(q)
    angle = math.acos(min(1.0, float(got.camera[:3, 2] @ got.hand[:3, 2])))
    assert angle == pytest.approx(abs(math.sin(3.1416)), abs=1e-8)


def test_zero_pose_worked_by_hand(kin: Kinematics) -> None:
    # At q = 0 each joint's rpy only permutes axes. Composing them (Rx(-pi/2) sends
    # y -> -z, z -> y; Ry(pi/2) sends x -> -z, z -> x) gives, in the base frame:
    #   right_l0: base axes.        right_l1, l3, l5: x = -Z, y = -X, z = +Y.
    #   right_l2, l4: x = -Z, y = +Y, z = +X.
    # So each joint's xyz, read in its parent link's axes, is a base-frame step:
    #   j0 (0, 0, .08)            -> +.08 Z
    #   j1 (.081, .05, .237), l0  -> (+.081, +.05, +.237)
    #   j2 (0, -.14, .1425), l1   -> -.14 (-X) + .1425 (+Y) = (+.14, +.1425, 0)
    #   j3 (0, -.042, .26), l2    -> -.042 (+Y) + .26 (+X) = (+.26, -.042, 0)
    #   j4 (0, -.125, -.1265), l3 -> -.125 (-X) - .1265 (+Y) = (+.125, -.1265, 0)
    #   j5 (0, .031, .275), l4    -> .031 (+Y) + .275 (+X) = (+.275, +.031, 0)
    #   j6 (0, -.11, .1053), l5   -> -.11 (-X) + .1053 (+Y) = (+.11, +.1053, 0)
    # right_l6's z is Rz(g) Ry(-.17453) Rx(-pi/2) e_z = (-sin g, cos g, 0) in right_l5,
    # i.e. (-cos g, 0, sin g) in the base frame, g = 3.1416 (not quite pi: a 7e-6 tilt
    # down). The hand is .0245 along it, the fingertips .13562 further. The camera is
    # (.039552, -.033, .0695) in right_l5: .039552 (-Z) - .033 (-X) + .0695 (+Y).
    g = 3.1416
    z6 = np.array([-math.cos(g), 0.0, math.sin(g)])
    l5 = np.array(
        [
            0.081 + 0.14 + 0.26 + 0.125 + 0.275,
            0.05 + 0.1425 - 0.042 - 0.1265 + 0.031,
            0.08 + 0.237,
        ]
    )
    l6 = l5 + np.array([0.11, 0.1053, 0.0])
    hand = l6 + 0.0245 * z6
    tips = hand + 0.13562 * z6
    camera = l5 + np.array([0.033, 0.0695, -0.039552])
    p = kin.poses(np.zeros(7))
    np.testing.assert_allclose(p.links[5][:3, 3], l5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.links[6][:3, 3], l6, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.hand[:3, 3], hand, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.fingertips, tips, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.camera[:3, 3], camera, rtol=0, atol=1e-12)
    assert l6 == pytest.approx([0.991, 0.1603, 0.317], abs=1e-12)
    # The arm points straight out along +X, hand and camera both looking that way; the
    # lowest guarded point is the fingertips, dipped by the 3.1416 tilt.
    np.testing.assert_allclose(p.hand[:3, 2], z6, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.camera[:3, 2], [1.0, 0.0, 0.0], rtol=0, atol=1e-9)
    assert kin.lowest_point_z(np.zeros(7)) == pytest.approx(tips[2], abs=1e-12)
    assert tips[2] < 0.317


def test_profile_numbers_are_the_urdf_numbers() -> None:
    chain = UrdfChain()
    assert list(SAWYER.joint_names) == ARM_JOINTS
    for spec in SAWYER.joints:
        origin = chain.joints[spec.name].find("origin")
        assert spec.xyz == numbers(origin.get("xyz"))
        np.testing.assert_allclose(spec.rpy, numbers(origin.get("rpy")), rtol=0, atol=1e-15)
        lim = chain.limits(spec.name)
        assert (spec.lower, spec.upper) == (lim["lower"], lim["upper"])
        assert (spec.velocity, spec.effort) == (lim["velocity"], lim["effort"])
    assert SAWYER.gripper.fingertip_offset == FINGERTIP_OFFSET


def test_the_urdf_rounding_of_the_hand_yaw_moves_no_point(kin: Kinematics) -> None:
    # With Rethink's literal 1.570796 the hand frame turns 3.3e-7 rad about its own z:
    # its x and y axes move by that much, its origin and the fingertips not at all.
    for q in list(POSES.values())[:12]:
        links = UrdfChain(URDF_HAND_YAW).link_poses(dict(zip(ARM_JOINTS, q.tolist(), strict=True)))
        got = kin.poses(q)
        hand = links["right_hand"].matrix()
        np.testing.assert_allclose(got.hand[:3, 2:], hand[:3, 2:], rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.hand[:3, :2], hand[:3, :2], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.fingertips, fingertips(links["right_hand"]), atol=1e-9)
