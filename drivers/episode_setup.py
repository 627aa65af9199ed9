"""Putting the world in place for episode n on a ROS robot: ask a twin, else the operator.

grasprt publishes ``/grasprt/episode_setup`` (std_msgs/String, JSON ``{"episode": n,
"seed": s}``) and waits briefly for ``/grasprt/episode_ready`` with the same episode. A
simulator behind the robot's API (``grasprt twin``) answers after resetting its world,
as ``grasprt run --robot sim`` does between episodes; a real robot has nobody on that
topic, so the operator is asked to place the sphere (on a terminal), as before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

SETUP_TOPIC = "/grasprt/episode_setup"
READY_TOPIC = "/grasprt/episode_ready"


class EpisodeSetup:
    def __init__(self, seed: int, operator: Callable[[int], None], timeout_s: float = 3.0) -> None:
        self.seed = seed
        self.operator = operator
        self.timeout_s = timeout_s
        self._ready: dict[int, threading.Event] = {}
        self._pub: Any = None
        # Whether a twin answered once: then it is waited for every time, not guessed.
        self.twin: bool | None = None

    def __call__(self, n: int) -> None:
        if self.twin is False or not self._ask_twin(n):
            self.operator(n)

    def _ask_twin(self, n: int) -> bool:
        from grasprt.drivers.ros_node import ensure_node

        rospy = ensure_node()
        from std_msgs.msg import String

        if self._pub is None:
            self._pub = rospy.Publisher(SETUP_TOPIC, String, queue_size=1, latch=True)
            rospy.Subscriber(READY_TOPIC, String, self._on_ready, queue_size=10)
        event = self._ready.setdefault(n, threading.Event())
        self._pub.publish(String(json.dumps({"episode": n, "seed": self.seed})))
        answered = event.wait(self.timeout_s)
        if self.twin is None:
            self.twin = answered
        elif self.twin and not answered:
            from grasprt.errors import DriverError

            raise DriverError(f"the twin did not set up episode {n} within {self.timeout_s} s")
        return answered

    def _on_ready(self, msg: Any) -> None:
        try:
            n = int(json.loads(msg.data)["episode"])
        except (ValueError, KeyError, TypeError):
            return
        self._ready.setdefault(n, threading.Event()).set()
