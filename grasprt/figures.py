"""Writing a matplotlib figure for a `--plot PNG` option: one line when it cannot."""

from __future__ import annotations

from typing import Any

from grasprt.errors import ConfigError


def save_figure(fig: Any, path: str, dpi: int = 100) -> None:
    """Save `fig` to `path` and close it; an unwritable path is bad input (exit 2)."""
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=dpi)
    except OSError as e:
        raise ConfigError(f"--plot {path}: cannot write ({e.strerror})") from None
    finally:
        plt.close(fig)
