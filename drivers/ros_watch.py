"""What a ROS client must watch for itself: when a topic last delivered, and whether the
master is still there.

intera_interface keeps the newest joint angles but not when they came, so a silent
/robot/joint_states would look fresh forever; :class:`TopicClock` stamps each message's
arrival on the loop's clock, which is what the loop's staleness watchdog needs. Existing
ROS connections survive a dead master (they are peer to peer), so nothing else would
notice it either; :class:`MasterWatch` asks it twice a second from its own thread.
"""

from __future__ import annotations

import threading
import xmlrpc.client
from typing import Any

from grasprt.drivers.ros_node import master_pid
from grasprt.types import Clock


class TopicClock:
    """The loop-clock time the newest message on a topic arrived (None: none yet)."""

    def __init__(self, rospy: Any, topic: str, msg_type: type, clock: Clock) -> None:
        self._clock = clock
        self.last: float | None = None
        self.count = 0
        self._first = threading.Event()
        self._sub = rospy.Subscriber(topic, msg_type, self._on_message, queue_size=1)

    def _on_message(self, _msg: object) -> None:
        self.last = self._clock.now()
        self.count += 1
        self._first.set()

    def wait_first(self, timeout_s: float) -> bool:
        return self._first.wait(timeout_s)

    def close(self) -> None:
        self._sub.unregister()


class MasterWatch:
    """Pings the ROS master; after `misses` failures in a row, `lost` says why."""

    def __init__(self, uri: str, period_s: float = 0.5, misses: int = 2) -> None:
        self.uri = uri
        self.period_s = period_s
        self.misses = misses
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ros-master-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.period_s + 1.0)

    def _alive(self) -> bool:
        try:
            master_pid(self.uri, self.period_s, "/grasprt_master_watch")
            return True
        except (OSError, xmlrpc.client.Error):
            return False

    def _run(self) -> None:
        missed = 0
        while not self._stop.wait(self.period_s):
            missed = 0 if self._alive() else missed + 1
            if missed >= self.misses and self.lost is None:
                self.lost = f"ROS master at {self.uri} lost"
