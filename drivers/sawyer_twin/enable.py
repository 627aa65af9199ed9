"""``/robot/state`` out, ``/robot/set_super_enable|reset|stop`` in: what RobotEnable uses.

The rules live in state.Assembly; this is only the ROS side. A refused request is
logged (the SDK itself only sees the state not change and times out, as on the robot).
"""

from __future__ import annotations

from typing import Any

from intera_core_msgs.msg import RobotAssemblyState
from std_msgs.msg import Bool, Empty

from grasprt.drivers.sawyer_twin.state import Assembly


class EnableServer:
    def __init__(self, rospy: Any, assembly: Assembly) -> None:
        self._rospy = rospy
        self.assembly = assembly
        self._pub = rospy.Publisher("/robot/state", RobotAssemblyState, queue_size=1, latch=True)
        sub = rospy.Subscriber
        self._subs = [
            sub("/robot/set_super_enable", Bool, self._on_enable, queue_size=10),
            sub("/robot/set_super_reset", Empty, self._on_reset, queue_size=10),
            sub("/robot/set_super_stop", Empty, self._on_stop, queue_size=10),
        ]
        self._last_refusal: str | None = None

    def _refused(self, what: str, reason: str | None) -> None:
        # RobotEnable publishes its request every 10 ms until the state follows: one
        # line per distinct refusal, not a hundred a second.
        if reason is not None and reason != self._last_refusal:
            self._rospy.logwarn("twin: %s refused: %s", what, reason)
        self._last_refusal = reason
        self.publish()

    def _on_enable(self, msg: Any) -> None:
        self._refused("enable" if msg.data else "disable", self.assembly.request_enable(msg.data))

    def _on_reset(self, _msg: Any) -> None:
        self._refused("reset", self.assembly.reset())

    def _on_stop(self, _msg: Any) -> None:
        self.assembly.stop()
        self.publish()

    def publish(self) -> None:
        s = self.assembly.snapshot()
        self._pub.publish(
            RobotAssemblyState(
                homed=True,
                ready=s.ready,
                enabled=s.enabled,
                stopped=s.stopped,
                error=s.error,
                lowVoltage=False,
                estop_button=s.estop_button,
                estop_source=s.estop_source,
            )
        )
