"""``grasprt export``: two PyTorch checkpoints -> a proven model bundle.

torch is imported only inside the command, so ``grasprt --help`` and the runtime work
on a robot PC without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from grasprt.bundle import N_JOINTS, describe
from grasprt.errors import GrasprtError

INSTALL_HINT = "pip install -e '.[export]'"


def _parse_action_scale(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> list[float] | None:
    if value is None:
        return None
    try:
        scales = [float(x) for x in value.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of numbers") from None
    if len(scales) == 1:
        scales *= N_JOINTS
    if len(scales) != N_JOINTS or not all(0 < x < float("inf") for x in scales):
        raise click.BadParameter(f"give 1 or {N_JOINTS} positive numbers, got {value!r}")
    return scales


@click.command("export")
@click.option(
    "--segmenter",
    "segmenter_ckpt",
    required=True,
    type=click.Path(path_type=Path),
    help="Segmenter checkpoint (state_dict, or {'state_dict', 'arch'}).",
)
@click.option(
    "--controller",
    "controller_ckpt",
    required=True,
    type=click.Path(path_type=Path),
    help="Controller checkpoint (state_dict).",
)
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Bundle directory to write."
)
@click.option(
    "--robot",
    default="sawyer",
    show_default=True,
    help="Robot profile the controller was trained for.",
)
@click.option(
    "--rate-hz",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Control rate the controller was trained at.",
)
@click.option(
    "--action-scale",
    callback=_parse_action_scale,
    metavar="RAD[,RAD...]",
    help="Radians per step for an action of 1.0: one number or 7.  [default: 0.05]",
)
@click.option(
    "--mask-threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Mask probability that counts as target.",
)
@click.option(
    "--camera",
    "camera_file",
    type=click.Path(path_type=Path),
    help="camera_info YAML of the camera the segmenter was trained with "
    "(400x400, no distortion). [default: the sim's wrist camera]",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    help="Also write the bundle's description and parity figures here.",
)
@click.option("--force", is_flag=True, help="Replace an existing bundle at --out.")
def export_cmd(
    segmenter_ckpt: Path,
    controller_ckpt: Path,
    out: Path,
    robot: str,
    rate_hz: float,
    action_scale: list[float] | None,
    mask_threshold: float,
    camera_file: Path | None,
    json_path: Path | None,
    force: bool,
) -> None:
    """Export PyTorch checkpoints to a model bundle, proven against ONNX Runtime.

    Nothing is written unless ONNX Runtime reproduces PyTorch to 1e-4 on every test
    input and the result passes the same checks `grasprt run` makes.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        raise GrasprtError(
            f"grasprt export needs PyTorch, which is not installed: {INSTALL_HINT}"
        ) from None
    from grasprt.calibration.camera_info import load_camera_info
    from grasprt.export.checkpoints import (
        controller_normalisation,
        load_controller,
        load_segmenter,
    )
    from grasprt.export.defaults import DEFAULT_ACTION_SCALE, as_bundle_camera
    from grasprt.export.onnx_export import export_bundle

    segmenter = load_segmenter(segmenter_ckpt)
    controller = load_controller(controller_ckpt)
    camera = None
    if camera_file is not None:
        camera = as_bundle_camera(load_camera_info(camera_file), str(camera_file))
    result = export_bundle(
        segmenter,
        controller,
        out,
        robot=robot,
        rate_hz=rate_hz,
        action_scale=DEFAULT_ACTION_SCALE if action_scale is None else action_scale,
        mask_threshold=mask_threshold,
        camera=camera,
        checkpoints={"segmenter": segmenter_ckpt, "controller": controller_ckpt},
        force=force,
        state_norm=controller_normalisation(controller_ckpt),
    )
    click.echo(result.summary())
    if json_path is not None:
        doc = {
            "out": str(out),
            "bundle": describe(result.bundle),
            "parity": result.parity.as_dict(),
        }
        json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
