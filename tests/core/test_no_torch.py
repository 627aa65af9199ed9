"""The robot PC has no torch: `grasprt run` must work with torch unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

BLOCK_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, BlockTorch())
    sys.argv = ["grasprt", *sys.argv[1:]]
    from grasprt.cli import main
    try:
        main()
    finally:
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch loaded"
    """
)


def test_run_sim_without_torch(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    rec = tmp_path / "run.mcap"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_TORCH,
            "run",
            "--robot",
            "sim",
            "--clock",
            "sim",
            "--episodes",
            "2",
            "--max-steps",
            "20",
            "--json",
            str(out),
            "--record",
            str(rec),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    assert summary["episodes"] == 2
    assert summary["steps"] == 40
    assert rec.stat().st_size > 0


def test_torch_is_really_blocked() -> None:
    """The blocker itself works: importing torch under it fails."""
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH.replace("from grasprt.cli import main", "import torch")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "blocked by the test" in proc.stderr
