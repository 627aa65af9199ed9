"""The simulator's world on MuJoCo's physics: the same interface as SimWorld, other physics.

An episode is drawn exactly as the kinematic simulator draws it (sphere, start pose,
encoder offset, look, clutter: :meth:`SimWorld.reset` with the same seed), then put
into MuJoCo, which from there on decides everything physical: how the arm moves under
its servo, whether the fingers hold the sphere (contact and friction only: nothing
here sets a "held" flag), where a bumped or rolling ball goes. The wrist camera
renders with grasprt's renderer from MuJoCo's poses (the camera body of robosuite's
model, the sphere's and clutter's free bodies); see docs/mujoco.md for why.

Time is the world's own fixed grid of MuJoCo steps (500 Hz), advanced lazily to the
clock's present by every read or command, as in SimWorld.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from grasprt.drivers.mujoco.scene import (
    ARM_JOINTS,
    FINGER_GEOMS,
    FINGER_JOINTS,
    PAD_GEOMS,
    TABLE,
    TARGET,
    TIMESTEP_S,
    Scene,
    build_scene,
)
from grasprt.drivers.mujoco.servo import JointServo
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.scene import Ball, Box, SceneSnapshot
from grasprt.drivers.sim.world import SimWorld
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER, GripperSpec
from grasprt.types import Clock, RobotState

# robosuite's finger material is black; black plastic still reflects a few percent.
FINGER_RGB = (0.05, 0.05, 0.055)
_PAD_HALF_THICKNESS = 0.004  # robosuite's finger pad boxes, across the closing direction
# Fingers this close to their closed stop have nothing between them.
_EMPTY_GAP_M = 0.001


class MujocoWorld(SimWorld):
    def __init__(
        self, config: SimConfig, clock: Clock, seed: int = 0, *, fingers: bool = True
    ) -> None:
        self.draw_fingers = fingers
        scene_cfg = config.scene
        self._base_scene = build_scene(scene_cfg.table_z, scene_cfg.sphere_radius)
        self.scene = self._base_scene
        self.data = self.scene.mj.MjData(self.scene.model)
        self._ids()
        gripper = self._measure_gripper()
        super().__init__(dataclasses.replace(config, substep_s=TIMESTEP_S), clock, seed)
        # The gripper this arm carries: the floor and the expert guard its fingertips.
        self.profile = dataclasses.replace(SAWYER, gripper=gripper)
        self.kin = Kinematics(self.profile)

    # ---- the model ------------------------------------------------------------------

    def _ids(self) -> None:
        s = self.scene
        self._qpos = np.array([s.joint_qpos(j) for j in ARM_JOINTS])
        self._dof = np.array([s.joint_dof(j) for j in ARM_JOINTS])
        self._finger_qpos = np.array([s.joint_qpos(j) for j in FINGER_JOINTS])
        self._finger_dof = np.array([s.joint_dof(j) for j in FINGER_JOINTS])
        self._arm_act = np.arange(len(ARM_JOINTS))
        self._grip_act = np.arange(len(ARM_JOINTS), len(ARM_JOINTS) + 2)
        lo, hi = s.model.actuator_ctrlrange[self._grip_act].T
        # r closes toward +y, l toward -y (robosuite's gripper_r / gripper_l actuators).
        self._grip_closed = np.array([hi[0], lo[1]])
        self._grip_open = np.array([lo[0], hi[1]])
        self._pads = [s.geom(g) for g in PAD_GEOMS]
        self._target_body = s.body(TARGET)
        self._target_geom = s.geom(TARGET)
        self._table_geom = s.geom(TABLE)
        self._finger_geoms = {s.geom(g) for g in FINGER_GEOMS}
        # Which finger each finger geom is on, found once: contacts are scanned every read.
        self._finger_side = {g: _side(s, int(s.model.geom_bodyid[g])) for g in self._finger_geoms}
        m = s.model
        free = {int(m.jnt_bodyid[j]) for j in range(m.njnt) if m.jnt_type[j] == 0}
        # Geoms of the robot: on a body that is neither the world nor a free object.
        body = m.geom_bodyid
        self._robot_geom = np.array([b != 0 and int(b) not in free for b in body])
        self._hand_body = s.body("right_hand")
        self._camera_body = s.body("right_hand_camera")
        self._target_qpos = s.model.jnt_qposadr[s.model.body_jntadr[self._target_body]]
        self._target_dof = s.model.jnt_dofadr[s.model.body_jntadr[self._target_body]]

    def _measure_gripper(self) -> GripperSpec:
        """The fingers' geometry read off the compiled model: what the profile assumes."""
        mj, m, d = self.scene.mj, self.scene.model, self.data
        d.qpos[self._qpos] = SAWYER.neutral
        d.qpos[self._finger_qpos] = self._grip_open
        mj.mj_kinematics(m, d)
        hand_pos = d.xpos[self._hand_body]
        axis = d.xmat[self._hand_body].reshape(3, 3)[:, 2]
        reach = 0.0
        for g in self._finger_geoms:
            rot = d.geom_xmat[g].reshape(3, 3)
            extent = float(np.sum(np.abs(axis @ rot) * m.geom_size[g]))
            reach = max(reach, float(axis @ (d.geom_xpos[g] - hand_pos)) + extent)
        # The opening keeps the profile's scale: it is the reading's (_gripper_reading).
        return dataclasses.replace(
            SAWYER.gripper, fingertip_offset=reach,
            finger_width=2 * float(m.geom_size[self._pads[0]][0]),
            finger_length=2 * float(m.geom_size[self._pads[0]][2]),
        )

    def _pad_gap(self) -> float:
        a, b = (self.data.geom_xpos[p] for p in self._pads)
        return float(np.linalg.norm(a - b)) - 2 * _PAD_HALF_THICKNESS

    def _squeeze_overlap(self) -> float:
        """How far, along the closing axis, the fingers overlap what they pinch (m).

        MuJoCo's contacts are soft: a finger pressing the ball with the grip force sinks
        ~0.5 mm into it, the constraint's compliance, not the plastic's. A real finger
        stops at the ball's surface and its encoder reads the ball's width; this is the
        overlap to add back to the pads' gap for that reading."""
        d, m = self.data, self.scene.model
        a, b = (d.geom_xpos[p] for p in self._pads)
        axis = (a - b) / max(float(np.linalg.norm(a - b)), 1e-9)
        deepest: dict[str, float] = {}
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            finger, other = (g1, g2) if g1 in self._finger_side else (g2, g1)
            if c.dist >= 0 or finger not in self._finger_side:
                continue
            if m.geom_bodyid[other] == 0 or self._robot_geom[other]:
                continue  # the table or the arm: nothing the fingers close on
            side = self._finger_side[finger]
            along = -float(c.dist) * abs(float(np.dot(c.frame[:3], axis)))
            deepest[side] = max(deepest.get(side, 0.0), along)
        return sum(deepest.values())

    # ---- episodes -------------------------------------------------------------------

    def reset(self, seed: int, sphere_xy: tuple[float, float] | None = None) -> None:
        with self.lock:
            super().reset(seed, sphere_xy)
            self.scene = self._scene_for(self.clutter)
            self.data = self.scene.mj.MjData(self.scene.model)
            self._ids()
            self.servo = JointServo(
                np.asarray(SAWYER.velocity), self.config.gap.speed_ratio,
                self.config.gap.latency_s, TIMESTEP_S,
            )
            self._place(self.arm.q)
            self.contacts = 0

    def _scene_for(self, clutter: tuple) -> Scene:
        if not clutter:
            return self._base_scene
        scene_cfg = self.config.scene
        return build_scene(scene_cfg.table_z, scene_cfg.sphere_radius, clutter)

    def _place(self, q: np.ndarray) -> None:
        d = self.data
        d.qpos[self._qpos] = q
        d.qpos[self._finger_qpos] = self._grip_open
        d.ctrl[self._grip_act] = self._grip_open
        a = self._target_qpos
        d.qpos[a : a + 3] = self.sphere.pos
        d.qpos[a + 3 : a + 7] = (1.0, 0.0, 0.0, 0.0)
        v = self.sphere.vel
        r = self.sphere.radius
        # Rolling, not sliding: spin that matches the speed at the contact point.
        spin = (-v[1] / r, v[0] / r, 0.0)
        d.qvel[self._target_dof : self._target_dof + 6] = (v[0], v[1], 0.0, *spin)
        self.servo.reset(q)
        self.scene.mj.mj_forward(self.scene.model, d)

    # ---- time -----------------------------------------------------------------------

    def _at_rest(self) -> bool:
        return False  # physics never rests for sure: always integrate

    def _step(self) -> None:
        d = self.data
        q, qd = d.qpos[self._qpos], d.qvel[self._dof]
        d.ctrl[self._arm_act] = self.servo.torques(self.time, q, qd)
        d.ctrl[self._grip_act] = self._finger_setpoint()
        self.scene.mj.mj_step(self.scene.model, d)
        self._n += 1
        if self._arm_on_table():
            self.contacts += 1

    def _finger_setpoint(self) -> np.ndarray:
        """The fingers' position targets, walking to open or closed at the gripper's
        speed (the profile's close time for the full stroke), as Intera's gripper moves
        at its set velocity: slammed shut in one step, they would flick a 2 g ball away."""
        goal = self._grip_closed if self.servo.close else self._grip_open
        now = self.data.ctrl[self._grip_act]
        step = np.abs(self._grip_closed - self._grip_open) * TIMESTEP_S / SAWYER.gripper.close_time
        return now + np.clip(goal - now, -step, step)

    def _arm_on_table(self) -> bool:
        """Does any part of the robot touch the table this step (the floor the limiter
        should have kept it off)?"""
        n = self.data.ncon
        if n == 0:
            return False
        g = self.data.contact.geom[:n]
        on_table = (g[:, 0] == self._table_geom) | (g[:, 1] == self._table_geom)
        robot = self._robot_geom[g[:, 0]] | self._robot_geom[g[:, 1]]
        return bool(np.any(on_table & robot))

    # ---- the robot's side -----------------------------------------------------------

    def command(self, q: np.ndarray, gripper_closed: bool) -> None:
        with self.lock:
            now = self.clock.now()
            self.advance_to(now)
            # Servo on the encoders, offset included (see SimWorld.command).
            target = np.asarray(q, dtype=np.float64) - self.bias
            target = np.clip(target, SAWYER.lower, SAWYER.upper)
            self.servo.command(now, target, gripper_closed)
            self.arm.gripper_closed = bool(gripper_closed)  # what the expert reads

    def hold(self) -> None:
        with self.lock:
            self.sync()
            self.servo.hold(self.data.qpos[self._qpos])

    def reported_state(self) -> RobotState:
        """Encoders (truth + offset + noise), the gripper's position and its sensing."""
        with self.lock:
            self.sync()
            noise = self.sensor_rng.normal(0.0, self.config.gap.noise_std, 7)
            return RobotState(
                q=self.data.qpos[self._qpos] + self.bias + noise,
                gripper=self._gripper_reading(),
                stamp=self.time,
                object_held=self._gripping(),
            )

    def _gripper_reading(self) -> float:
        """The gap as the Sawyer driver reports Intera's gripper position: 0 open at the
        profile's full scale (41.7 mm; these fingers open to 47.1 mm, reading 0 there
        too), 1 closed: the scale the bundle's state was trained on. The gap is where
        rigid fingers would stop (`_squeeze_overlap`)."""
        gap = self._pad_gap() + self._squeeze_overlap()
        return float(np.clip(1.0 - gap / SAWYER.gripper.max_opening, 0.0, 1.0))

    def _gripping(self) -> bool:
        """The gripper's own sensing, as Intera's `is_gripping`: told to close, and
        stopped short of closed by something between the fingers (not set by a rule
        about the sphere: what stops them is the contact)."""
        stopped_short = self._pad_gap() > _EMPTY_GAP_M
        still = bool(np.all(np.abs(self.data.qvel[self._finger_dof]) < 0.01))
        return self.servo.close and stopped_short and still

    # ---- privileged truth -----------------------------------------------------------

    def true_q(self) -> np.ndarray:
        with self.lock:
            self.sync()
            return self.data.qpos[self._qpos].copy()

    def sphere_position(self) -> np.ndarray:
        with self.lock:
            self.sync()
            return self.data.xpos[self._target_body].copy()

    def hand_pose(self) -> np.ndarray:
        with self.lock:
            self.sync()
            return _pose(self.data, self._hand_body)

    def fingertip_position(self) -> np.ndarray:
        hand = self.hand_pose()
        return hand[:3, 3] + hand[:3, 2] * self.profile.gripper.fingertip_offset

    def camera_pose(self) -> np.ndarray:
        with self.lock:
            self.sync()
            optical = np.eye(4)
            optical[:3, :3] = SAWYER.camera_optical
            # The camera as really mounted: robosuite's camera body, then the mount error.
            return _pose(self.data, self._camera_body) @ optical @ self._mount

    def gripper_position(self) -> float:
        with self.lock:
            self.sync()
            return self._gripper_reading()

    def object_held(self) -> bool:
        with self.lock:
            self.sync()
            return self._gripping()

    def table_contacts(self) -> int:
        with self.lock:
            self.sync()
            return self.contacts

    def sphere_touches_both_fingers(self) -> bool:
        d = self.data
        touching = set()
        for i in range(d.ncon):
            c = d.contact[i]
            pair = {int(c.geom1), int(c.geom2)}
            if self._target_geom in pair:
                touching |= pair & self._finger_geoms
        return len({self._finger_side[g] for g in touching}) == 2

    def _sphere_held(self) -> bool:
        # Held is what the contacts say: the sphere touches both fingers' sides.
        return self.sphere_touches_both_fingers()

    def snapshot(self) -> SceneSnapshot:
        with self.lock:
            self.sync()
            scene = self.config.scene
            return SceneSnapshot(
                t=self.time,
                episode=self.episode,
                camera_pose=self.camera_pose(),
                table_z=scene.table_z,
                target=Ball(self.sphere_position(), self.sphere.radius, scene.sphere_rgb),
                clutter=self._clutter_now(),
                look=self.look,
                board=self.board,
                hand_parts=self._fingers() if self.draw_fingers else (),
            )

    def _fingers(self) -> tuple[Box, ...]:
        m, d = self.scene.model, self.data
        return tuple(
            Box(
                d.geom_xpos[g].copy(),
                d.geom_xmat[g].reshape(3, 3).copy(),
                m.geom_size[g].copy(),
                FINGER_RGB,
            )
            for g in sorted(self._finger_geoms)
        )

    def _clutter_now(self) -> tuple:
        out = []
        for i, obj in enumerate(self.clutter):
            body = self.scene.body(f"clutter{i}")
            pos = self.data.xpos[body].copy()
            if not isinstance(obj, Ball):
                pos[2] += (obj.centre[2] - self.config.scene.table_z) / 2  # its top face
            out.append(dataclasses.replace(obj, centre=pos))
        return tuple(out)


def _pose(data, body: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    pose = np.eye(4)
    pose[:3, :3] = data.xmat[body].reshape(3, 3)
    pose[:3, 3] = data.xpos[body]
    return pose


def _side(scene: Scene, body: int) -> str:
    """Which finger ('l' or 'r') a finger body belongs to."""
    m = scene.model
    while body > 0:
        name = scene.mj.mj_id2name(m, scene.mj.mjtObj.mjOBJ_BODY, body) or ""
        if name.endswith("l_finger"):
            return "l"
        if name.endswith("r_finger"):
            return "r"
        body = int(m.body_parentid[body])
    return "?"
