"""Build the placeholder bundle: the paper's networks with seeded random weights.

It exists so the loop, the recorder and the drivers can run end to end before any
trained models exist. It grasps nothing. It goes through the same export, parity proof
and validation as a trained bundle::

    python -m grasprt.export.placeholder --out models/placeholder
"""

from __future__ import annotations

from pathlib import Path

import click
import torch

from grasprt.errors import GrasprtError
from grasprt.export.models import Controller, Segmenter
from grasprt.export.onnx_export import ExportResult, export_bundle

SEED = 0
# Random weights give actions up to ~0.15 in the joint range (~0.5 far outside it);
# halving the last layer keeps the arm's random walk to a few mrad per step, slow
# enough to watch, large enough that the loop visibly moves it.
OUTPUT_GAIN = 0.5


def build_placeholder(out: str | Path, force: bool = True) -> ExportResult:
    torch.manual_seed(SEED)
    segmenter = Segmenter().eval()
    controller = Controller().eval()
    with torch.no_grad():
        controller.fc2.weight.mul_(OUTPUT_GAIN)
        controller.fc2.bias.mul_(OUTPUT_GAIN)
    return export_bundle(
        segmenter,
        controller,
        out,
        force=force,
        seed=SEED,
        provenance={
            "placeholder": True,
            "note": "random weights: runs the loop, grasps nothing",
            "seed": SEED,
            "controller_output_gain": OUTPUT_GAIN,
        },
    )


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("models/placeholder"),
    show_default=True,
    help="Bundle directory to (re)write.",
)
def main(out: Path) -> None:
    """Write the placeholder bundle (random weights, seed 0)."""
    try:
        result = build_placeholder(out)
    except GrasprtError as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(e.exit_code) from None
    click.echo(result.summary())


if __name__ == "__main__":
    main()
