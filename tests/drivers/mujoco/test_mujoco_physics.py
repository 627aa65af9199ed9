"""The Sawyer in MuJoCo, for real: robosuite's model, MuJoCo's contacts, our servo.

Every check here is physics MuJoCo computes (nothing in the world sets a "held" flag):
a ball at rest, a gripper shut on air, a pinch that lifts and lets go, a joint move
at the speed Intera allows, and the same episode from the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from grasprt.clock import SimClock
from grasprt.drivers.mujoco import world as mujoco_world
from grasprt.drivers.sim.config import GAP_PRESETS, SimConfig
from grasprt.drivers.sim.ik import solve_ik
from grasprt.kinematics import Kinematics
from grasprt.profiles import SAWYER

pytestmark = pytest.mark.mujoco


def world(seed: int = 1, xy=(0.6, 0.0), **config):
    clock = SimClock()
    w = mujoco_world.MujocoWorld(SimConfig(**config), clock, seed=seed)
    w.reset(seed, sphere_xy=xy)
    return w, clock


def settle(w, clock, seconds: float) -> None:
    for _ in range(round(seconds / 0.1)):
        clock.advance(0.1)
        w.sync()


def tips_to(w, clock, point, close: bool, seconds: float) -> None:
    """Servo the fingertips to `point`, hand down, through the arm's own servo."""
    q = solve_ik(w.kin, w.true_q(), np.asarray(point, float), frame="fingertips")
    w.command(q + w.encoder_bias(), close)
    settle(w, clock, seconds)


def test_a_dropped_sphere_comes_to_rest_on_the_table():
    w, clock = world()
    d, a = w.data, w._target_qpos
    d.qpos[a + 2] = w.table_z + w.sphere.radius + 0.05  # 5 cm up
    w.scene.mj.mj_forward(w.scene.model, d)
    settle(w, clock, 1.5)
    z = w.sphere_position()[2]
    assert z == pytest.approx(w.table_z + w.sphere.radius, abs=5e-4)
    assert np.linalg.norm(d.qvel[w._target_dof : w._target_dof + 3]) < 1e-3


def test_a_gripper_that_closes_on_nothing_holds_nothing():
    w, clock = world(xy=(0.7, 0.1))
    above_nothing = (0.55, -0.1, w.table_z + 0.01)
    tips_to(w, clock, above_nothing, False, 3.0)
    tips_to(w, clock, above_nothing, True, 1.0)
    assert w._pad_gap() < 0.001  # shut
    assert not w.object_held()
    assert w.gripper_position() > 0.97
    truth = w.grasp_truth()  # the evaluation's trace: told to close, nothing held
    assert truth.closing and not truth.held and truth.lift_m == pytest.approx(0.0, abs=1e-3)


def test_a_pinch_lifts_the_sphere_and_opening_drops_it():
    w, clock = world()
    s = w.sphere_position()
    tips_to(w, clock, s + np.array([0.0, 0.0, 0.06]), False, 3.0)
    tips_to(w, clock, (s[0], s[1], w.table_z + 0.002), False, 2.0)
    tips_to(w, clock, (s[0], s[1], w.table_z + 0.002), True, 1.0)
    assert w.object_held()
    assert w._pad_gap() == pytest.approx(2 * w.sphere.radius, abs=0.0015)  # stopped on it
    # The reading is where rigid fingers stop: the ball's width, MuJoCo's soft overlap
    # added back (a pressed finger sinks ~0.5 mm into it).
    assert w._squeeze_overlap() > 2e-4
    width = 1.0 - 2 * w.sphere.radius / SAWYER.gripper.max_opening
    assert w.gripper_position() == pytest.approx(width, abs=0.005)
    tips_to(w, clock, (s[0], s[1], w.table_z + 0.12), True, 3.0)
    lifted = w.sphere_position()[2] - (w.table_z + w.sphere.radius)
    assert lifted > 0.10
    assert w.grasp_succeeded()
    truth = w.grasp_truth()
    assert truth.closing and truth.held and truth.lift_m == pytest.approx(lifted)
    tips_to(w, clock, (s[0], s[1], w.table_z + 0.12), False, 2.0)
    assert w.sphere_position()[2] == pytest.approx(w.table_z + w.sphere.radius, abs=1e-3)
    assert not w.grasp_succeeded()
    truth = w.grasp_truth()
    assert not truth.closing and not truth.held


def test_a_commanded_joint_position_is_reached_within_the_velocity_limit():
    w, clock = world(gap=GAP_PRESETS["default"])
    q0 = w.true_q()
    target = q0 + np.array([0.3, -0.2, 0.25, 0.2, -0.3, 0.3, 0.5])
    w.command(target + w.encoder_bias(), False)
    cap = np.asarray(SAWYER.velocity) * w.config.gap.speed_ratio
    peak = np.zeros(7)
    for _ in range(300):  # 3 s at 10 ms
        clock.advance(0.01)
        w.sync()
        peak = np.maximum(peak, np.abs(w.data.qvel[w._dof]))
    assert np.max(np.abs(w.true_q() - target)) < 2e-3
    assert np.all(peak <= np.asarray(SAWYER.velocity))  # the Sawyer's own limits
    # The speed ratio holds, but for the servo's overshoot as it catches its setpoint
    # (j0, the joint that sets the pace, ~6 % with these gains) ...
    assert np.all(peak <= cap * 1.15)
    assert peak[0] >= cap[0] * 0.9  # ... and the pace-setting joint did move at its cap


def test_the_same_seed_gives_the_same_episode():
    def episode():
        w, clock = world(seed=5)
        s = w.sphere_position()
        tips_to(w, clock, s + np.array([0.0, 0.0, 0.03]), False, 1.0)
        tips_to(w, clock, (s[0], s[1], w.table_z + 0.002), True, 1.0)
        return np.concatenate([w.true_q(), w.sphere_position(), w.reported_state().q])

    assert np.array_equal(episode(), episode())


def test_the_camera_sits_where_the_urdf_puts_it():
    """robosuite's Sawyer and REFERENCE.md's URDF agree on the wrist camera's pose."""
    w, _ = world()
    ours = Kinematics(SAWYER).poses(w.true_q()).camera
    theirs = w.camera_pose()
    assert np.allclose(ours[:3, 3], theirs[:3, 3], atol=1e-3)
    assert np.allclose(ours[:3, :3], theirs[:3, :3], atol=1e-2)


def test_the_fingers_appear_in_the_wrist_camera_where_they_are():
    from grasprt.drivers.sim.factory import default_intrinsics
    from grasprt.drivers.sim.optics import View
    from grasprt.drivers.sim.render import Renderer

    w, _ = world()
    r = Renderer(default_intrinsics(), noise_std=0.0)
    snap = w.snapshot()
    pad = snap.hand_parts[0].centre
    u, v = View.of(r.canvas, snap.camera_pose).project(
        View.of(r.canvas, snap.camera_pose).to_camera(pad[None])
    )[0]
    with_fingers = r.render(snap, np.random.default_rng(0))
    w.draw_fingers = False
    without = r.render(w.snapshot(), np.random.default_rng(0))
    iu, iv = int(u), int(v)
    assert with_fingers[iv, iu].max() < 40  # a black finger
    assert without[iv, iu].min() > 60  # the table



def test_the_true_mask_is_what_the_camera_sees_past_the_fingers():
    """Turned so a finger crosses the line of sight, the true mask loses what the
    rendered image loses (the sphere's yellow pixels), and the hand mask covers it."""
    import cv2

    from grasprt.drivers.sim.camera import SimWristCamera
    from grasprt.drivers.sim.factory import default_intrinsics
    from grasprt.drivers.sim.mask import truth_mask
    from grasprt.drivers.sim.optics import View

    w, _ = world()
    intr = default_intrinsics()
    cam = SimWristCamera(w, intr, intr, noise_std=0.0, threaded=False)
    sphere = w.sphere_position()
    hidden_somewhere = False
    for turn in (0.0, -0.6, -1.0):
        for height in (0.09, 0.05, 0.03):
            above = sphere + np.array([0.0, 0.0, height])
            q = solve_ik(w.kin, w.true_q(), above, frame="fingertips")
            q[6] += turn
            w._place(q)
            frame = cam.capture()
            snap = w.snapshot()
            bare = truth_mask(View.of(intr, snap.camera_pose), sphere, w.sphere.radius) > 0.5
            hsv = cv2.cvtColor(frame.image, cv2.COLOR_RGB2HSV)
            yellow = (cv2.inRange(hsv, (20, 140, 60), (36, 255, 255)) > 0).astype(np.float32)
            seen = cv2.resize(yellow, (100, 100), interpolation=cv2.INTER_AREA) >= 0.5
            truth = frame.truth_mask > 0.5
            assert (seen ^ truth).sum() <= 1, (turn, height)
            assert not (bare & ~truth & ~frame.hand_mask).any()
            hidden_somewhere |= bool((bare & ~truth).sum() >= 4)
    assert hidden_somewhere  # the sweep does put a finger in the way


def test_the_fingertips_reach_where_the_sawyers_do():
    # robosuite's fingers stop 12.7 mm short of the standard narrow fingers' tips; the
    # grasp depth every policy and the limiter's floor assume is the Sawyer's.
    w, _ = world()
    assert w.profile.gripper.fingertip_offset == pytest.approx(
        SAWYER.gripper.fingertip_offset, abs=1e-4
    )
