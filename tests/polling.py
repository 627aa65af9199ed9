"""Waiting for something another thread or process does, without a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(test: Callable[[], bool], timeout_s: float = 3.0, every_s: float = 0.005) -> bool:
    """True as soon as `test()` is; False if it still is not after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if test():
            return True
        time.sleep(every_s)
    return test()
