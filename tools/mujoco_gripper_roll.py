"""How often the fingers hide the sphere from the wrist camera, per turn of the gripper.

    .venv/bin/python tools/mujoco_gripper_roll.py [--json roll.json]

The camera sits on right_l5, behind j6, so the fingers' turn against it is j6 plus the
gripper's turn on the flange (`scene.GRIPPER_ROLL_RAD`). For each extra turn of j6 (the
same thing as another flange turn), the fingertips are put at five heights over the
middle of the workspace, and the sphere at 81 places within 12 cm around there: the
share of in-view places where the hand hides it completely, grasprt's renderer's rule
(the true mask, `drivers/sim/mask.py`), over all places and within 5 cm of the tips.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from grasprt.clock import SimClock
from grasprt.drivers.mujoco import scene as mujoco_scene
from grasprt.drivers.mujoco.world import MujocoWorld
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.factory import default_intrinsics
from grasprt.drivers.sim.ik import solve_ik
from grasprt.drivers.sim.mask import truth_mask
from grasprt.drivers.sim.optics import View

HEIGHTS_M = (0.14, 0.11, 0.08, 0.05, 0.03)  # fingertips above the sphere
OFFSETS_M = np.linspace(-0.12, 0.12, 9)


def sweep(world: MujocoWorld, turn: float) -> dict[str, float]:
    intr = default_intrinsics()
    r, z = world.sphere.radius, world.config.scene.table_z + world.sphere.radius
    hidden = seen = near_hidden = near_seen = 0
    q = world.arm.q.copy()
    for h in HEIGHTS_M:
        q = solve_ik(world.kin, q, (0.6, 0.0, z + h), frame="fingertips")
        world._place(q + np.eye(7)[6] * turn)
        snap = world.snapshot()
        view = View.of(intr, snap.camera_pose)
        for dx in OFFSETS_M:
            for dy in OFFSETS_M:
                c = np.array([0.6 + dx, dy, z])
                if not truth_mask(view, c, r).any():
                    continue  # out of view
                gone = not truth_mask(view, c, r, snap.hand_parts).any()
                near = np.hypot(dx, dy) < 0.05
                seen, hidden = seen + 1, hidden + gone
                near_seen, near_hidden = near_seen + near, near_hidden + (near and gone)
    return {
        "turn_rad": round(turn + mujoco_scene.GRIPPER_ROLL_RAD, 3),
        "hidden": hidden / seen,
        "hidden_within_5cm": near_hidden / max(near_seen, 1),
        "places": seen,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the table here")
    args = ap.parse_args()
    world = MujocoWorld(SimConfig(), SimClock(), 0, fingers=True)
    world.reset(0, sphere_xy=(0.6, 0.0))
    rows = [sweep(world, t) for t in np.arange(-np.pi / 2, np.pi / 2 - 1e-6, np.pi / 16)]
    print("| gripper turn on the flange (rad) | hidden, all places | within 5 cm of the tips |")
    print("|---|---|---|")
    for row in rows:
        ours = abs(row["turn_rad"] - mujoco_scene.GRIPPER_ROLL_RAD) < 1e-6
        turn = f"{row['turn_rad']:+.2f}" + (" (grasprt's)" if ours else "")
        print(f"| {turn} | {row['hidden']:.1%} | {row['hidden_within_5cm']:.1%} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
