"""Episodes and the truth: resetting the twin's world, and what only a simulator knows.

In: ``/grasprt_twin/reset`` (std_msgs/String, JSON ``{"seed": s, "x": .., "y": ..}``,
x/y optional: where the sphere goes) and grasprt's own ``/grasprt/episode_setup``
(``{"episode": n, "seed": s}``, answered on ``/grasprt/episode_ready`` after the reset,
with the episode seed `grasprt run --robot sim` uses, so a run on the twin sees the
sim's episodes). Out: ``/grasprt_twin/truth`` (latched JSON: grasp success, sphere and
fingertip positions, true joints), at a low rate and right after every reset.
"""

from __future__ import annotations

import json
import math
from typing import Any

from std_msgs.msg import String

from grasprt.drivers.sawyer_twin.arm import TwinArm

RESET_TOPIC = "/grasprt_twin/reset"
TRUTH_TOPIC = "/grasprt_twin/truth"
SETUP_TOPIC = "/grasprt/episode_setup"
READY_TOPIC = "/grasprt/episode_ready"


def episode_seed(seed: int, n: int) -> int:
    """Episode n's world seed: the same formula as drivers/sim/kind.py's episodes."""
    return seed * 100_003 + n


def parse_reset(data: str) -> tuple[int, tuple[float, float] | None]:
    """(seed, sphere_xy or None) from a reset message; ValueError when it is not one."""
    try:
        d = json.loads(data)
    except ValueError:
        raise ValueError(f"not JSON: {data!r}") from None
    if not isinstance(d, dict) or "seed" not in d:
        raise ValueError('expected {"seed": S, "x": X, "y": Y} (x, y optional)')
    seed = int(d["seed"])
    if ("x" in d) != ("y" in d):
        raise ValueError("give both x and y, or neither")
    if "x" not in d:
        return seed, None
    xy = (float(d["x"]), float(d["y"]))
    if not all(math.isfinite(v) for v in xy):
        raise ValueError(f"sphere position {xy} must be finite")
    return seed, xy


def truth_of(arm: TwinArm) -> dict[str, Any]:
    """What only the simulator knows, as plain JSON values."""
    w = arm.world
    return {
        "episode": w.episode,
        "seed": int(w.seed),
        # bool(): the world answers numpy booleans, which json cannot write.
        "grasp_succeeded": bool(w.grasp_succeeded()),
        "object_held": bool(w.object_held()),
        "sphere": [float(v) for v in w.sphere_position()],
        "fingertips": [float(v) for v in w.fingertip_position()],
        "true_q": [float(v) for v in w.true_q()],
        "gripper": float(w.gripper_position()),
        "table_contacts": int(w.table_contacts()),
        "command_timeouts": arm.timeouts,
    }


class EpisodeServer:
    def __init__(self, rospy: Any, arm: TwinArm, seed: int) -> None:
        self._rospy = rospy
        self.arm = arm
        self.world = arm.world
        self.run_seed = seed
        self._truth = rospy.Publisher(TRUTH_TOPIC, String, queue_size=1, latch=True)
        self._ready = rospy.Publisher(READY_TOPIC, String, queue_size=10, latch=True)
        self._subs = [
            rospy.Subscriber(RESET_TOPIC, String, self._on_reset, queue_size=10),
            rospy.Subscriber(SETUP_TOPIC, String, self._on_setup, queue_size=10),
        ]

    def _on_reset(self, msg: Any) -> None:
        try:
            seed, xy = parse_reset(msg.data)
        except (ValueError, TypeError) as err:
            self._rospy.logwarn("twin: %s ignored: %s", RESET_TOPIC, err)
            return
        self.reset(seed, xy)

    def _on_setup(self, msg: Any) -> None:
        try:
            d = json.loads(msg.data)
            n = int(d["episode"])
            seed = int(d.get("seed", self.run_seed))
        except (ValueError, KeyError, TypeError) as err:
            self._rospy.logwarn("twin: %s ignored: %s", SETUP_TOPIC, err)
            return
        self.reset(episode_seed(seed, n), None)
        self._ready.publish(String(json.dumps({"episode": n})))

    def reset(self, seed: int, xy: tuple[float, float] | None) -> None:
        self.arm.reset_episode(seed, xy)
        self._rospy.loginfo("twin: world reset, seed %d, sphere %s", seed, xy or "drawn")
        self.publish_truth()

    def truth(self) -> dict[str, Any]:
        return {"stamp": self._rospy.get_rostime().to_sec(), **truth_of(self.arm)}

    def publish_truth(self) -> None:
        self._truth.publish(String(json.dumps(self.truth())))
