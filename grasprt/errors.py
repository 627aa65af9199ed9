"""Errors every part of grasprt shares, with the exit code the CLI maps them to."""

from __future__ import annotations


class GrasprtError(Exception):
    """Bad input found before the arm moves: a bundle, a flag, a file, a missing device.

    The CLI prints ``str(err)`` as one line and exits 2. Messages name the thing at
    fault ("bundle.json: field 'rate_hz' must be a number") so no traceback is needed.
    """

    exit_code = 2


class BundleError(GrasprtError):
    """A model bundle that does not follow INTERFACE.md."""


class ConfigError(GrasprtError):
    """A configuration file or flag that cannot be used."""


class DriverError(GrasprtError):
    """A driver that cannot start: missing package, device absent, wrong serial number."""


class FaultStop(Exception):
    """The loop stopped on a safety fault after the arm was told to hold. Exit code 3."""

    exit_code = 3

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
