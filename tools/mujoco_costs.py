"""What `--robot mujoco` costs per physics step and per wrist-camera frame, on this CPU.

    .venv/bin/python tools/mujoco_costs.py [--json costs.json]

Times, each as p50/p99 over one run: MuJoCo's `mj_step` alone; the world's whole step
(the servo, the step, the contact scan); grasprt's renderer with the fingers; and
MuJoCo's own offscreen renderer (EGL, Mesa's software GL) from the wrist camera, with
every visual and with only what the hand camera can see (collision shapes: fingers,
table, balls). The choice of renderer in docs/mujoco.md rests on these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from grasprt.clock import SimClock
from grasprt.drivers.mujoco.world import MujocoWorld
from grasprt.drivers.sim.config import SimConfig
from grasprt.drivers.sim.factory import default_intrinsics
from grasprt.drivers.sim.ik import solve_ik
from grasprt.drivers.sim.render import Renderer


def times_ms(fn: Callable[[], object], n: int) -> dict[str, float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    a = np.asarray(out)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "n": n}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure() -> dict[str, object]:
    clock = SimClock()
    w = MujocoWorld(SimConfig(), clock, seed=1)
    w.reset(1, sphere_xy=(0.6, 0.0))
    s = w.sphere_position()
    q = solve_ik(w.kin, w.true_q(), s + np.array([0.0, 0.0, 0.03]), frame="fingertips")
    w.command(q + w.encoder_bias(), False)  # the arm moves while it is timed
    mj, model, data = w.scene.mj, w.scene.model, w.data
    res: dict[str, object] = {"cpu": cpu_model(), "cores": os.cpu_count()}
    res["mj_step"] = times_ms(lambda: mj.mj_step(model, data), 2000)
    res["world_step"] = times_ms(w._step, 2000)
    renderer = Renderer(default_intrinsics())
    rng = np.random.default_rng(0)
    res["grasprt_render"] = times_ms(lambda: renderer.render(w.snapshot(), rng), 100)
    res["mujoco_render"] = _mujoco_render(w)
    return res


def _mujoco_render(w: MujocoWorld) -> dict[str, object]:
    """MuJoCo's renderer from robosuite's camera body, rotated to look as the optical
    frame does (MuJoCo cameras look down their -z with +y up)."""
    mj = w.scene.mj
    try:
        spec_cam = mj.MjvCamera()
        renderer = mj.Renderer(w.scene.model, 400, 400)
    except Exception as e:  # no GL: say so rather than fail the other figures
        return {"error": f"{type(e).__name__}: {e}"}
    pose = w.camera_pose()
    spec_cam.type = mj.mjtCamera.mjCAMERA_FREE
    forward = pose[:3, 2]
    spec_cam.lookat[:] = pose[:3, 3] + forward * 0.3
    spec_cam.distance = 0.3
    spec_cam.azimuth = float(np.degrees(np.arctan2(forward[1], forward[0])))
    spec_cam.elevation = float(np.degrees(np.arcsin(np.clip(forward[2], -1, 1))))
    out: dict[str, object] = {}
    for label, groups in (("all_visuals", (1, 1, 1)), ("hand_view_only", (1, 0, 0))):
        opt = mj.MjvOption()
        opt.geomgroup[:3] = groups

        def frame(opt: object = opt) -> None:
            renderer.update_scene(w.data, camera=spec_cam, scene_option=opt)
            renderer.render()

        out[label] = times_ms(frame, 20)
    renderer.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    res = measure()
    print(f"CPU: {res['cpu']} ({res['cores']} cores)")
    for key in ("mj_step", "world_step", "grasprt_render"):
        r = res[key]
        print(f"{key:<28} p50 {r['p50_ms']:8.3f}  p99 {r['p99_ms']:8.3f} ms  (n={r['n']})")
    for key, r in res["mujoco_render"].items():
        if isinstance(r, dict):
            print(f"mujoco_render {key:<14} p50 {r['p50_ms']:8.3f}  p99 {r['p99_ms']:8.3f} ms")
        else:
            print(f"mujoco_render: {r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
