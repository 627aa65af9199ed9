"""The serial device emulators live in grasprt.evaluation.faults.emulators now (the
`grasprt faults` campaign drives them too); the driver tests import them from here."""

from grasprt.evaluation.faults.emulators import (  # noqa: F401
    HeartbeatMonitorEmulator,
    Pty,
    RobotiqEmulator,
    point_link,
    wait_for,
)
