"""The MuJoCo scene: robosuite's Sawyer and Rethink gripper on a mount, a table, free bodies.

Nothing of the robot is ours: its links, masses, inertias, collision shapes, joint
ranges, finger slides and finger actuators are robosuite's MJCF, loaded as it ships.
What this module adds is what robosuite's environments would add around it:

- a pedestal under the base and a table whose top is at the scene's `table_z`;
- the target sphere and any clutter as free bodies, with mass, friction and rolling
  resistance (condim 6), so a grasp holds only by contact and friction;
- gravity compensation on the arm's bodies (the Sawyer's controller does this) and a
  reflected motor inertia (`armature`) on its joints, which the MJCF leaves at zero:
  a geared motor's rotor dominates a wrist joint's inertia;
- collision filtering: the arm's shapes collide with the world but not with each other
  (robosuite's primitives overlap at the joints), the fingers with everything but the arm;
- the fingers mounted one slot further in (`FINGER_SLOT_M` each): as shipped, robosuite's
  closed fingers leave a 13.4 mm gap, and the 13.7 mm sphere would be pinched by 0.3 mm;
  the Rethink gripper's fingers mount in slots chosen for the object, and one slot in
  they close to a 0.5 mm gap, as the profile's gripper (closed = 0) expects;
- the fingers mounted `FINGER_EXTENSION_M` further out, so that their tips reach where
  the Sawyer's standard narrow fingers do (135.6 mm beyond `right_hand`, against
  robosuite's 122.9 mm): the grasp depth every policy and the limiter assume;
- the gripper turned `GRIPPER_ROLL_RAD` about the hand's axis on its flange, so that the
  wrist camera looks between the fingers: mounted as robosuite ships it, one finger
  crosses the camera's line of sight to the grasp point for whole stretches of the
  descent (docs/mujoco.md, `tools/mujoco_gripper_roll.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from grasprt.drivers.mujoco.assets import import_mujoco, robosuite_assets
from grasprt.drivers.sim.scene import Ball, Disc
from grasprt.profiles import SAWYER

TIMESTEP_S = 0.002  # 500 Hz: the servo's rate, standing in for the robot's 1 kHz loop
ARM_JOINTS = SAWYER.joint_names
GRIPPER_PREFIX = "gripper0_"
FINGER_JOINTS = (f"{GRIPPER_PREFIX}r_finger_joint", f"{GRIPPER_PREFIX}l_finger_joint")
FINGER_GEOMS = tuple(
    f"{GRIPPER_PREFIX}{side}_{part}"
    for side in ("l", "r")
    for part in ("finger_g0", "finger_g1", "fingertip_g0", "fingerpad_g0")
)
PAD_GEOMS = (f"{GRIPPER_PREFIX}l_fingerpad_g0", f"{GRIPPER_PREFIX}r_fingerpad_g0")
TARGET = "target"
TABLE = "table"
# Reflected rotor inertia per joint (kg m^2): a plausible gear-motor figure, not Rethink's.
ARMATURE = (0.5, 0.5, 0.3, 0.3, 0.1, 0.1, 0.05)
# The gripper's turn on the flange (rad about the hand's z). The camera sits on right_l5,
# behind j6, so the turn of the fingers against the camera's offset is j6 plus this.
# Measured (tools/mujoco_gripper_roll.py: tips 3-14 cm over mid-workspace, the sphere
# at 81 places around): no turn clears the view everywhere (4-8 % of in-view places are
# hidden at every turn), but within 5 cm of the tips, where the grasp is decided, the
# sphere is hidden at 24 % of places as robosuite mounts it and 13 % at +0.6 rad, the
# least of the sweep's 16 turns (with the fingers at the Sawyer's length; 11 % with
# robosuite's shorter ones, +0.8 tying).
GRIPPER_ROLL_RAD = 0.6
# Each finger this much nearer the middle than robosuite mounts it (m).
FINGER_SLOT_M = 0.0065
# How far robosuite's fingertips reach beyond `right_hand` (m), read off its compiled
# model (1.5.2, `MujocoWorld._measure_gripper`).
ROBOSUITE_FINGERTIPS_M = 0.1229
# The fingers this much further out along the hand's axis than robosuite mounts them (m):
# the Sawyer's standard narrow fingers (intera_common, ../shared/REFERENCE.md) reach
# 135.62 mm, which is what the profile, the kinematic sim and the trained policy assume.
# The electric gripper takes fingers of several lengths; this is the one the arm carries.
FINGER_EXTENSION_M = SAWYER.gripper.fingertip_offset - ROBOSUITE_FINGERTIPS_M
# The fingers' squeeze (N): robosuite's 20 N limit presses a 2 g ball deep into MuJoCo's
# soft contacts; Intera's gripper holds with a set force, a few newtons for a light part.
GRIP_FORCE_N = 3.0
FINGER_DAMPING = 10.0  # N s/m
# Stiffer contacts than MuJoCo's default (0.02 s): fingers, ball and table are hard
# plastic and wood. 0.004 s is twice the step, the stiffest MuJoCo integrates stably.
CONTACT_SOLREF = (0.004, 1.0)
CONTACT_SOLIMP = (0.95, 0.99, 0.001, 0.5, 2.0)
# Collision bits: the world is 1, the arm's own shapes 2 (never each other).
_WORLD, _ARM = 1, 2


@dataclass(frozen=True)
class Body:
    """The physical properties of a free body; its look comes from the renderer's scene."""

    mass: float
    friction: tuple[float, float, float]  # sliding, torsional, rolling (m)


# A 1.37 cm plastic ball (solid ABS would be 1.4 g), and a table of painted wood.
SPHERE = Body(mass=0.002, friction=(1.0, 0.005, 5e-6))
CLUTTER = Body(mass=0.02, friction=(0.8, 0.005, 5e-6))
TABLE_FRICTION = (0.9, 0.005, 1e-5)
# Only MuJoCo's own renderer uses colours (tools/mujoco_hand_view.py): the sim's yellow.
TARGET_RGB = (0.93, 0.80, 0.08)


@dataclass
class Scene:
    mj: ModuleType
    model: Any  # mujoco.MjModel
    clutter: tuple[Ball | Disc, ...]

    def body(self, name: str) -> int:
        return int(self.mj.mj_name2id(self.model, self.mj.mjtObj.mjOBJ_BODY, name))

    def geom(self, name: str) -> int:
        return int(self.mj.mj_name2id(self.model, self.mj.mjtObj.mjOBJ_GEOM, name))

    def joint_qpos(self, name: str) -> int:
        j = self.mj.mj_name2id(self.model, self.mj.mjtObj.mjOBJ_JOINT, name)
        return int(self.model.jnt_qposadr[j])

    def joint_dof(self, name: str) -> int:
        j = self.mj.mj_name2id(self.model, self.mj.mjtObj.mjOBJ_JOINT, name)
        return int(self.model.jnt_dofadr[j])


def build_scene(
    table_z: float, sphere_radius: float, clutter: tuple[Ball | Disc, ...] = ()
) -> Scene:
    """The scene, compiled once per process for each table and sphere (compiling the
    gripper's meshes takes ~1.5 s); with `clutter` (one episode's draw), compiled anew."""
    if clutter:
        return _compile(table_z, sphere_radius, clutter)
    key = (table_z, sphere_radius)
    if key not in _CACHE:
        _CACHE[key] = _compile(table_z, sphere_radius, ())
    return _CACHE[key]


_CACHE: dict[tuple[float, float], Scene] = {}


def _compile(table_z: float, sphere_radius: float, clutter: tuple[Ball | Disc, ...]) -> Scene:
    mj = import_mujoco()
    robot_xml, gripper_xml = robosuite_assets()
    spec = mj.MjSpec.from_file(str(robot_xml))
    gripper = mj.MjSpec.from_file(str(gripper_xml))
    roll = GRIPPER_ROLL_RAD / 2.0
    spec.body("right_hand").add_frame(quat=[np.cos(roll), 0.0, 0.0, np.sin(roll)]).attach_body(
        gripper.body("gripper_base"), GRIPPER_PREFIX, ""
    )
    _physics_options(mj, spec)
    _robot_tuning(mj, spec)
    _world(mj, spec, table_z)
    _free_ball(
        mj, spec, TARGET, sphere_radius, SPHERE, (0.6, 0.0, table_z + sphere_radius), TARGET_RGB
    )
    for i, obj in enumerate(clutter):
        _clutter_body(mj, spec, f"clutter{i}", obj, table_z)
    return Scene(mj, spec.compile(), clutter)


def _physics_options(mj: ModuleType, spec: Any) -> None:
    spec.option.timestep = TIMESTEP_S
    # implicitfast integrates the joints' damping and the finger servos' gains stably.
    spec.option.integrator = mj.mjtIntegrator.mjINT_IMPLICITFAST
    # An elliptic friction cone with a high impratio keeps a pinched ball from creeping.
    spec.option.cone = mj.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0


def _robot_tuning(mj: ModuleType, spec: Any) -> None:
    for name, armature in zip(ARM_JOINTS, ARMATURE, strict=True):
        spec.joint(name).armature = armature
    for body in spec.bodies:
        if body.name not in ("", "world"):
            body.gravcomp = 1.0  # the robot's own gravity model (the sphere is not robot)
    finger = set(FINGER_GEOMS)
    for geom in spec.geoms:
        if geom.contype == 0 and geom.conaffinity == 0:
            continue  # a visual mesh
        if geom.name in finger:
            geom.contype, geom.conaffinity = 0, _WORLD
        else:
            geom.contype, geom.conaffinity = _ARM, _WORLD
    for act in spec.actuators:
        if act.name.startswith(GRIPPER_PREFIX):
            act.forcerange = np.array([-GRIP_FORCE_N, GRIP_FORCE_N])
    for name in ("l_finger_joint", "r_finger_joint"):
        # robosuite's 100 N s/m would let 3 N close the fingers at 3 cm/s (over a second);
        # Intera's gripper closes its full stroke in about the profile's 0.4 s.
        spec.joint(f"{GRIPPER_PREFIX}{name}").damping = [FINGER_DAMPING, 0.0, 0.0]
    for geom in spec.geoms:
        if geom.name in finger:
            geom.solref, geom.solimp = list(CONTACT_SOLREF), list(CONTACT_SOLIMP)
    for side, inward in (("l", -1.0), ("r", 1.0)):
        body = spec.body(f"{GRIPPER_PREFIX}{side}_finger")
        body.pos = body.pos + np.array([0.0, inward * FINGER_SLOT_M, FINGER_EXTENSION_M])


def _world(mj: ModuleType, spec: Any, table_z: float) -> None:
    wb = spec.worldbody
    box = mj.mjtGeom.mjGEOM_BOX
    # The pedestal: from the floor, 0.9 m below the table top, up to the arm's base.
    floor_z = table_z - 0.9
    height = -floor_z
    wb.add_geom(
        name="mount", type=mj.mjtGeom.mjGEOM_CYLINDER, size=[0.09, height / 2, 0],
        pos=[0, 0, floor_z + height / 2], rgba=[0.2, 0.2, 0.2, 1],
        contype=_WORLD, conaffinity=_WORLD,
    )
    wb.add_geom(
        name=TABLE, type=box, size=[0.45, 0.7, 0.02], pos=[0.65, 0, table_z - 0.02],
        rgba=[0.6, 0.5, 0.4, 1], friction=list(TABLE_FRICTION),
        contype=_WORLD, conaffinity=_WORLD,
        # As hard as the fingers and the ball: a pair's softness is the mean of its two
        # geoms', and a soft table lets a pinch press the ball into it and squirt it out.
        solref=list(CONTACT_SOLREF), solimp=list(CONTACT_SOLIMP),
    )
    wb.add_geom(
        name="floor", type=mj.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, floor_z],
        contype=_WORLD, conaffinity=_WORLD,
    )


def _free_ball(
    mj: ModuleType, spec: Any, name: str, radius: float, props: Body, pos: tuple, rgb: tuple
) -> None:
    body = spec.worldbody.add_body(name=name, pos=list(pos))
    body.add_freejoint()
    body.add_geom(
        name=name, type=mj.mjtGeom.mjGEOM_SPHERE, size=[radius, 0, 0], mass=props.mass,
        rgba=[*rgb, 1.0],
        friction=list(props.friction), condim=6, contype=_WORLD, conaffinity=_WORLD,
        solref=list(CONTACT_SOLREF), solimp=list(CONTACT_SOLIMP),
    )


def _clutter_body(mj: ModuleType, spec: Any, name: str, obj: Ball | Disc, table_z: float) -> None:
    if isinstance(obj, Ball):
        _free_ball(mj, spec, name, obj.radius, CLUTTER, tuple(obj.centre), obj.rgb)
        return
    # A disc: a thin cylinder whose top face is where the world drew it.
    thickness = max(float(obj.centre[2]) - table_z, 0.001)
    centre = (float(obj.centre[0]), float(obj.centre[1]), table_z + thickness / 2)
    body = spec.worldbody.add_body(name=name, pos=list(centre))
    body.add_freejoint()
    body.add_geom(
        name=name, type=mj.mjtGeom.mjGEOM_CYLINDER, size=[obj.radius, thickness / 2, 0],
        mass=CLUTTER.mass, friction=list(CLUTTER.friction), condim=6, rgba=[*obj.rgb, 1.0],
        contype=_WORLD, conaffinity=_WORLD,
    )
