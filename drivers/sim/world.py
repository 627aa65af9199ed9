"""The simulated world: a Sawyer on a table with a small yellow sphere, advanced lazily.

The world keeps its own time on a fixed grid of `substep_s` steps, anchored at the
clock's time of the last reset. Every public read or command first advances it to the
clock's present (:meth:`SimWorld.advance_to`), so the same code serves a fast
:class:`~grasprt.clock.SimClock` run (deterministic given the seed and the
calls) and a real-time run on a monotonic clock. One re-entrant lock guards it all:
the camera thread and the loop thread both call in.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from grasprt.drivers.sim.arm import ArmDynamics
from grasprt.drivers.sim.board import board_print
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.grasp import (
    CloseOutcome,
    classify_close,
    closed_on_sphere,
    sphere_in_fingers,
)
from grasprt.drivers.sim.ik import solve_ik
from grasprt.drivers.sim.scene import CLUTTER_RGB, Ball, Disc, SceneSnapshot, draw_look
from grasprt.drivers.sim.target import TargetSphere
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics, Poses, transform
from grasprt.profiles import SAWYER
from grasprt.types import Clock, RobotState

LIFT_FOR_SUCCESS_M = 0.05
_GRID_EPS = 1e-7  # clock times a hair short of a grid point still reach it


@dataclass(frozen=True)
class GraspTruth:
    closing: bool  # the gripper is told to close (the command as the arm applies it)
    held: bool  # the sphere is between the fingers (the simulator's truth)
    lift_m: float  # the sphere's height above where it rests on the table


class SimWorld:
    def __init__(self, config: SimConfig, clock: Clock, seed: int = 0) -> None:
        self.config = config
        self.clock = clock
        self.profile = SAWYER
        self.kin = Kinematics(SAWYER)
        self.lock = threading.RLock()
        scene = config.scene
        self.dt = config.substep_s
        self.arm = ArmDynamics(self.kin, config.gap, scene.table_z, self.dt)
        self.sphere = TargetSphere(scene.sphere_radius, scene.table_z, scene.workspace)
        self._grip_closed_at = closed_on_sphere(SAWYER.gripper, scene.sphere_diameter)
        self._grip_rate = 1.0 / SAWYER.gripper.close_time
        self.episode = 0
        self._poses_q: np.ndarray | None = None
        self._poses_cache: Poses | None = None
        # The camera as really mounted: the URDF's optical frame times the mount error.
        err = config.camera_mount_error
        self._mount = np.eye(4) if err is None else transform(*err)
        self.board = None if config.board is None else board_print(config.board)
        self.reset(seed)

    # ---- episodes -------------------------------------------------------------------

    def reset(self, seed: int, sphere_xy: tuple[float, float] | None = None) -> None:
        """Start a new episode: sphere, start pose, bias, look and clutter drawn from `seed`.

        `sphere_xy` places the sphere instead of drawing it (an evaluation grid); every
        other draw is the same as without it, so a grid position's repeats differ only
        by their seeds.
        """
        if sphere_xy is not None and not all(math.isfinite(v) for v in sphere_xy):
            raise ConfigError(f"sphere position {sphere_xy} must be finite")
        scene = self.config.scene
        rng_place, rng_events, rng_sensor, rng_look = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        with self.lock:
            self.episode += 1
            self.seed = seed
            self._t0 = self.clock.now()
            self._n = 0
            self._events = rng_events
            self.sensor_rng = rng_sensor
            x0, x1, y0, y1 = scene.workspace
            drawn = (rng_place.uniform(x0, x1), rng_place.uniform(y0, y1))
            if sphere_xy is not None:
                drawn = (float(sphere_xy[0]), float(sphere_xy[1]))
            heading = rng_place.uniform(-np.pi, np.pi)
            speed = scene.moving_speed if self.config.moving else 0.0
            self.sphere.place(drawn, speed * np.array([np.cos(heading), np.sin(heading)]))
            self.arm.reset(self._start_pose(rng_place))
            self.bias = rng_place.normal(0.0, self.config.gap.bias_std, 7)
            self.clutter = self._draw_clutter(rng_place)
            self.look = draw_look(rng_look, self.config.camera.max_blur_sigma)
            self.gripper = 0.0

    def _start_pose(self, rng: np.random.Generator) -> np.ndarray:
        scene = self.config.scene
        x0, x1, y0, y1 = scene.workspace
        above = (
            rng.uniform(x0, x1),
            rng.uniform(y0, y1),
            scene.table_z + rng.uniform(*scene.start_height),
        )
        q = solve_ik(self.kin, np.asarray(SAWYER.neutral), above, frame="camera")
        noise = rng.uniform(-scene.start_joint_noise, scene.start_joint_noise, 7)
        noisy = np.clip(q + noise, SAWYER.lower, SAWYER.upper)
        # A guard for low custom start heights: joint noise must not start the hand in the table.
        return noisy if self.kin.lowest_point_z(noisy) > scene.table_z + 0.02 else q

    def _draw_clutter(self, rng: np.random.Generator) -> tuple[Ball | Disc, ...]:
        scene = self.config.scene
        x0, x1, y0, y1 = scene.workspace
        placed: list[Ball | Disc] = []
        keep_off = [(self.sphere.pos[:2], scene.sphere_radius)]
        for _ in range(self.config.clutter):
            is_ball = rng.random() < 0.5
            radius = rng.uniform(0.008, 0.025) if is_ball else rng.uniform(0.01, 0.03)
            rgb = CLUTTER_RGB[int(rng.integers(len(CLUTTER_RGB)))]
            for _try in range(50):
                xy = np.array([rng.uniform(x0 - 0.1, x1 + 0.1), rng.uniform(y0 - 0.1, y1 + 0.1)])
                if all(np.linalg.norm(xy - c) > radius + r + 0.03 for c, r in keep_off):
                    break
            keep_off.append((xy, radius))
            if is_ball:
                placed.append(Ball(np.array([*xy, scene.table_z + radius]), radius, rgb))
            else:
                top = scene.table_z + rng.uniform(0.002, 0.004)
                placed.append(Disc(np.array([*xy, top]), radius, rgb))
        return tuple(placed)

    # ---- time -----------------------------------------------------------------------

    @property
    def table_z(self) -> float:
        return self.config.scene.table_z

    @property
    def time(self) -> float:
        return self._t0 + self._n * self.dt

    def advance_to(self, t: float) -> None:
        """Integrate in fixed substeps up to the last grid time not after `t`."""
        with self.lock:
            n_target = math.floor((t - self._t0) / self.dt + _GRID_EPS)
            while self._n < n_target:
                if self._at_rest():
                    # Nothing would change: jump (a real-time run left idle for minutes).
                    self._n = n_target
                    break
                self._step()

    def sync(self) -> None:
        self.advance_to(self.clock.now())

    def _at_rest(self) -> bool:
        if not self.arm.gripper_closed:
            g_rest = 0.0
        else:
            g_rest = self._grip_closed_at if self.sphere.in_hand is not None else 1.0
        return self.arm.settled() and self.gripper == g_rest and not self.sphere.rolling

    def _step(self) -> None:
        self.arm.step(self.time)
        self._step_gripper()
        self.sphere.roll(self.dt)
        self._n += 1
        if self.sphere.in_hand is not None:
            self.sphere.follow(self._poses().hand)

    def _step_gripper(self) -> None:
        before = self.gripper
        if not self.arm.gripper_closed:
            self.gripper = max(before - self._grip_rate * self.dt, 0.0)
            if self.sphere.in_hand is not None and self.gripper < self._grip_closed_at:
                self.sphere.release()
            return
        if self.sphere.in_hand is not None:
            return  # resting on the sphere
        self.gripper = min(before + self._grip_rate * self.dt, 1.0)
        if before < self._grip_closed_at <= self.gripper:
            hand = self._poses().hand
            spec, radius = SAWYER.gripper, self.sphere.radius
            outcome = classify_close(hand, spec, self.sphere.pos, radius)
            if outcome is CloseOutcome.GRASP:
                rel = sphere_in_fingers(hand, spec, self.sphere.pos)
                self.sphere.attach(hand, rel, spec.fingertip_offset)
                self.gripper = self._grip_closed_at
            elif outcome is CloseOutcome.BUMP:
                heading = self._events.uniform(-np.pi, np.pi)
                shift = self._events.uniform(0.002, 0.008)
                self.sphere.push(shift * np.array([np.cos(heading), np.sin(heading)]))

    def _poses(self) -> Poses:
        """Forward kinematics of the true joints, cached until they change.

        The arm replaces its `q` array whenever it moves (never edits it in place), so
        the array's identity says whether the cache is still good.
        """
        if self._poses_q is not self.arm.q:
            self._poses_cache = self.kin.poses(self.arm.q)
            self._poses_q = self.arm.q
        return self._poses_cache

    # ---- the robot's side -------------------------------------------------------------

    def command(self, q: np.ndarray, gripper_closed: bool) -> None:
        with self.lock:
            now = self.clock.now()
            self.advance_to(now)
            # The joint controllers servo on the encoders, offset included, as a real
            # arm's do: a target is reached when the *reported* angle equals it. So an
            # arm told to stay where it reads itself to be stays put, and the offset
            # shows only where the truth matters (the hand's real place, the camera's
            # view). Taking the target as a true angle instead would drift the arm by
            # the offset on every command, a fault no encoder error causes.
            self.arm.command(now, np.asarray(q, dtype=np.float64) - self.bias, gripper_closed)

    def hold(self) -> None:
        with self.lock:
            self.sync()
            self.arm.hold()

    def reported_state(self) -> RobotState:
        """What the arm's encoders say: truth plus this episode's bias plus white noise."""
        with self.lock:
            self.sync()
            noise = self.sensor_rng.normal(0.0, self.config.gap.noise_std, 7)
            return RobotState(
                q=self.arm.q + self.bias + noise,
                gripper=self.gripper,
                stamp=self.time,
                object_held=self.sphere.in_hand is not None,
            )

    # ---- privileged truth (the expert, evaluation, tests) -----------------------------

    def true_q(self) -> np.ndarray:
        with self.lock:
            self.sync()
            return self.arm.q.copy()

    def encoder_bias(self) -> np.ndarray:
        """This episode's encoder offset per joint (reported minus true, noise aside)."""
        return self.bias.copy()

    def sphere_position(self) -> np.ndarray:
        with self.lock:
            self.sync()
            return self.sphere.pos.copy()

    def fingertip_position(self) -> np.ndarray:
        with self.lock:
            self.sync()
            return self._poses().fingertips.copy()

    def hand_pose(self) -> np.ndarray:
        with self.lock:
            self.sync()
            return self._poses().hand.copy()

    def camera_pose(self) -> np.ndarray:
        """The camera's true optical frame: the URDF's, moved by the mount error."""
        with self.lock:
            self.sync()
            return self._poses().camera @ self._mount

    def gripper_position(self) -> float:
        with self.lock:
            self.sync()
            return self.gripper

    def object_held(self) -> bool:
        with self.lock:
            self.sync()
            return self.sphere.in_hand is not None

    def table_contacts(self) -> int:
        """Substeps in which the table stopped the arm, since the last reset."""
        with self.lock:
            self.sync()
            return self.arm.contacts

    def grasp_succeeded(self) -> bool:
        """The sphere is held (`_sphere_held`, each world's own test) and lifted at least
        5 cm off the table."""
        truth = self.grasp_truth()
        return truth.held and truth.lift_m >= LIFT_FOR_SUCCESS_M

    def grasp_truth(self) -> GraspTruth:
        """What the gripper is told, whether the sphere is really held, how high it is:
        the evaluation's per-cycle trace of an attempt (evaluation/attempt_trace.py)."""
        with self.lock:
            self.sync()
            return GraspTruth(
                closing=bool(self.arm.gripper_closed),
                held=self._sphere_held(),
                lift_m=float(self.sphere_position()[2] - self.sphere.rest_z),
            )

    def _sphere_held(self) -> bool:
        return self.sphere.in_hand is not None

    def snapshot(self) -> SceneSnapshot:
        """Everything a camera needs to render the present moment."""
        with self.lock:
            self.sync()
            scene = self.config.scene
            return SceneSnapshot(
                t=self.time,
                episode=self.episode,
                camera_pose=self._poses().camera @ self._mount,
                table_z=scene.table_z,
                target=Ball(self.sphere.pos.copy(), self.sphere.radius, scene.sphere_rgb),
                clutter=self.clutter,
                look=self.look,
                board=self.board,
            )
