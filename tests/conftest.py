"""Shared test setup: helper modules in tests/ (e.g. bundle_factory) import by name.

No folder directly under tests/ may be named like a top-level package (grasprt):
with tests/ on sys.path it would shadow the installed package.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
