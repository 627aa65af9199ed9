"""The recipe's figures: DAgger's loss and success per iteration (like the paper's Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_dagger(
    history: Sequence[dict[str, Any]],
    out: Path,
    final: dict[str, float],
    validation: Sequence[dict[str, Any]] = (),
    chosen: int | None = None,
) -> None:
    """Training loss and the acting policy's success per iteration; the candidates'
    validation means at the iteration that trained them, the chosen one starred; the
    final bundle's `grasprt eval` rates as horizontal marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [h["iteration"] for h in history]
    fig, (ax_loss, ax_ok) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(its, [h["loss"] for h in history], "o-")
    ax_loss.set_xlabel("DAgger iteration")
    ax_loss.set_ylabel("training loss (squared L2)")
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    frames = [h["aggregate"] for h in history]
    ax_ok.plot(its, [h["actor_success"] for h in history], "o-", label="acting policy (training)")
    if validation:
        ax_ok.plot(
            [v["policy"] for v in validation],
            [v["mean"] for v in validation],
            "s",
            label="validation mean (policy of that iteration)",
        )
    if chosen is not None:
        mean = next((v["mean"] for v in validation if v["policy"] == chosen), None)
        if mean is not None:
            ax_ok.plot([chosen], [mean], "*", markersize=14, label=f"chosen: policy {chosen}")
    for (name, rate), style in zip(final.items(), ("--", ":", "-.", (0, (1, 3))), strict=False):
        ax_ok.axhline(rate, linestyle=style, color="grey", label=f"{name}: {rate:.2f}")
    ax_ok.set_xlabel("DAgger iteration (iteration 1: the expert acts)")
    ax_ok.set_ylabel("grasp success")
    ax_ok.set_ylim(0, 1.02)
    ax_ok.grid(alpha=0.3)
    ax_ok.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"DAgger on the simulated Sawyer ({frames[-1] if frames else 0} labelled frames)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
