"""What the Sawyer's wrist camera can see of the sphere past robosuite's gripper.

    .venv/bin/python tools/mujoco_hand_view.py [--png views.png] [--json view.json]

MuJoCo renders the scene from a camera on robosuite's `right_hand_camera` body (the
URDF's mount, the bundle's 80-degree pinhole) while the fingertips descend onto the
sphere; a segmentation render counts the sphere's visible pixels at each height, with
robosuite's visual meshes, with its collision shapes only, and with the robot hidden
(the unoccluded count). The PNG puts MuJoCo's view beside grasprt's renderer (which
`--robot mujoco` uses, with the fingers drawn as boxes) at the last height.
Needs a GL (MUJOCO_GL=egl with Mesa, or osmesa).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from grasprt.clock import SimClock
from grasprt.drivers.mujoco import scene as mujoco_scene
from grasprt.drivers.mujoco.world import MujocoWorld
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.factory import default_intrinsics
from grasprt.drivers.sim.ik import solve_ik
from grasprt.drivers.sim.render import Renderer
from grasprt.profiles import SAWYER

HEIGHTS_M = (0.20, 0.10, 0.06, 0.03, 0.01, 0.002)  # fingertips above the table
CAMERA = "hand_view"


def _with_camera(build):  # type: ignore[no-untyped-def]
    """scene._world plus a MuJoCo camera on the camera body, looking as the optical
    frame does (MuJoCo cameras look down their -z with +y up)."""

    def world(mj, spec, table_z):  # type: ignore[no-untyped-def]
        build(mj, spec, table_z)
        rot = np.asarray(SAWYER.camera_optical) @ np.diag([1.0, -1.0, -1.0])
        quat = np.zeros(4)
        mj.mju_mat2Quat(quat, rot.flatten())
        intr = default_intrinsics()
        fovy = 2 * np.degrees(np.arctan(intr.height / 2 / intr.fy))
        spec.body("right_hand_camera").add_camera(name=CAMERA, quat=quat, fovy=fovy)

    return world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png", help="MuJoCo's view beside grasprt's, at the grasp")
    ap.add_argument("--json", help="the counts")
    args = ap.parse_args()
    mujoco_scene._world = _with_camera(mujoco_scene._world)
    mujoco_scene._CACHE.clear()
    clock = SimClock()
    w = MujocoWorld(SimConfig(), clock, seed=1)
    w.reset(1, sphere_xy=(0.6, 0.0))
    mj, model = w.scene.mj, w.scene.model
    renderer = mj.Renderer(model, 400, 400)
    sphere = w.sphere_position()
    rows = []
    for h in HEIGHTS_M:
        point = np.array([sphere[0], sphere[1], w.table_z + h])
        q = solve_ik(w.kin, w.true_q(), point, frame="fingertips")
        w.command(q + w.encoder_bias(), False)
        for _ in range(20):
            clock.advance(0.1)
            w.sync()
        rows.append({"tips_above_table_m": h, **_visible(w, renderer)})
        r = rows[-1]
        print(
            f"tips {h * 100:5.1f} cm above the table: sphere pixels visible "
            f"{r['meshes']:4d} (visual meshes), {r['collision']:4d} (collision shapes), "
            f"{r['unoccluded']:4d} (robot hidden)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    if args.png:
        _picture(w, renderer, args.png)


def _visible(w: MujocoWorld, renderer) -> dict[str, int]:  # type: ignore[no-untyped-def]
    mj, model = w.scene.mj, w.scene.model
    opt = mj.MjvOption()
    opt.sitegroup[:] = 0
    renderer.enable_segmentation_rendering()
    counts = {}
    groups = w.scene.model.geom_group.copy()
    for label, shown in (("meshes", (1, 1)), ("collision", (1, 0)), ("unoccluded", (1, 1))):
        opt.geomgroup[:2] = shown
        if label == "unoccluded":
            model.geom_group[w._robot_geom] = 3
        renderer.update_scene(w.data, camera=CAMERA, scene_option=opt)
        seg = renderer.render()
        hit = (seg[:, :, 0] == w._target_geom) & (seg[:, :, 1] == mj.mjtObj.mjOBJ_GEOM)
        counts[label] = int(hit.sum())
    model.geom_group[:] = groups
    renderer.disable_segmentation_rendering()
    return counts


def _picture(w: MujocoWorld, renderer, path: str) -> None:  # type: ignore[no-untyped-def]
    import cv2

    opt = w.scene.mj.MjvOption()
    opt.sitegroup[:] = 0
    renderer.update_scene(w.data, camera=CAMERA, scene_option=opt)
    theirs = renderer.render()
    ours = Renderer(default_intrinsics()).render(w.snapshot(), np.random.default_rng(0))
    cv2.imwrite(path, np.hstack([theirs, ours])[:, :, ::-1])


if __name__ == "__main__":
    main()
