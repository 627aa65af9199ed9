"""``grasprt calibrate-camera`` and ``grasprt view`` (click commands; the CLI registers them).

Errors are raised as :class:`grasprt.errors.GrasprtError` subclasses; the CLI's handler
prints their one line and exits 2. Drivers and bundles are imported inside the commands
so that ``--help`` and the image-folder path need neither.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np

from grasprt.calibration.boards import parse_board
from grasprt.calibration.camera_info import load_camera_info, save_camera_info
from grasprt.calibration.coverage import DIMENSIONS, CoverageTracker
from grasprt.calibration.image_folder import detect_folder
from grasprt.calibration.intrinsics_source import SOURCE_HELP, load_intrinsics
from grasprt.calibration.live import LiveOptions, check_window_support, collect_live
from grasprt.calibration.model_view import DEFAULT_MIN_COVERAGE, REFERENCE_MODEL_CAMERA, ModelView
from grasprt.calibration.plot import plot_data, write_coverage_plot
from grasprt.calibration.resolution import fit_to_resolution
from grasprt.calibration.solve import CalibrationResult, SolveOptions, View, calibrate
from grasprt.calibration.view import Segmenter, compose_view, mask_panel
from grasprt.errors import ConfigError, DriverError
from grasprt.types import Camera, Frame

# Above this the views disagree with any one lens model: a bent board, a wrong --square
# between prints, or a board that moved.
RMS_WARNING_PX = 0.5


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as e:
        raise ConfigError(f"{path}: cannot write JSON ({e.strerror})") from None


def _check_output(path: Path | None, flag: str) -> None:
    """Fail before the work, not after it, when a result could not be written."""
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: folder {parent} does not exist")


def _parse_resolution(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not m:
        raise ConfigError(f"--resolution {text}: expected WIDTHxHEIGHT, e.g. 640x480")
    return int(m.group(1)), int(m.group(2))


def _open_camera(spec: str, sim_camera_file: str | None = None) -> Camera:
    if spec.strip() == "sim":
        # The simulated wrist camera in a default scene, rendering through
        # ``sim_camera_file`` when given: what a dry run with that calibration sees.
        from grasprt.clock import MonotonicClock
        from grasprt.drivers.sim.config import SimConfig
        from grasprt.drivers.sim.factory import make_sim

        _, _, camera = make_sim(SimConfig(camera_file=sim_camera_file), MonotonicClock())
        return camera
    from grasprt.drivers.factory import make_camera

    return make_camera(spec)


def _report(result: CalibrationResult, progress: dict[str, float]) -> None:
    i, sd = result.intrinsics, result.std
    click.echo(f"camera {i.width}x{i.height}, {result.views_used} views used")
    for name, value in (("fx", i.fx), ("fy", i.fy), ("cx", i.cx), ("cy", i.cy)):
        click.echo(f"  {name} {value:10.3f} ± {sd[name]:.3f} px")
    coeff_names = [n for n in sd if n not in ("fx", "fy", "cx", "cy")]
    click.echo(
        "  dist "
        + "  ".join(f"{n} {v:+.5f} ± {sd[n]:.5f}" for n, v in zip(coeff_names, i.dist, strict=True))
    )
    click.echo(f"RMS reprojection error {result.rms:.3f} px")
    click.echo(
        "per-view RMS (px): " + ", ".join(f"{n} {e:.3f}" for n, e in result.per_view_errors.items())
    )
    if result.dropped:
        click.echo(
            "dropped as outliers: "
            + ", ".join(f"{n} ({e:.2f} px)" for n, e in result.dropped.items())
        )
    click.echo(
        "coverage of ROS's targets: "
        + "  ".join(f"{d} {100 * progress[d]:.0f}%" for d in DIMENSIONS)
    )
    if result.rms > RMS_WARNING_PX:
        _echo(
            f"warning: RMS {result.rms:.2f} px is high: is the board flat, --square right, "
            "the board still in every view?"
        )
    short = [d for d in DIMENSIONS if progress[d] < 1.0]
    if short:
        _echo(
            f"warning: the views do not span the image fully ({', '.join(short)}); "
            "add views at the edges, nearer and farther, and tilted"
        )


CALIBRATE_HELP = """Calibrate a camera's intrinsics and lens distortion from views of a board.

\b
Writes a ROS camera_info YAML (--out), which `grasprt view --calibration`,
the camera drivers and ROS's own tools read, a coverage plot PNG (--plot,
default OUT.coverage.png) and, with --json, the result and its quality
figures. Views come from a folder of images or from a live camera; in live
mode the terminal shows how well the views cover the image (x, y, size,
skew) and a view is taken only when it adds something, as in ROS's
camera_calibration; it runs headless over SSH.

\b
Boards:
  chessboard:COLSxROWS  inner corners (a board of 10x7 squares is 9x6)
  charuco:COLSxROWS     squares, with --marker and --dictionary

\b
Examples:
  grasprt calibrate-camera --images shots/ --board chessboard:9x6 \\
      --square 0.025 --out wrist.yaml --json wrist.json
  grasprt calibrate-camera --camera realsense --board charuco:5x7 \\
      --square 0.04 --marker 0.03 --dictionary DICT_4X4_50 --out wrist.yaml
  grasprt calibrate-camera --camera opencv:0 --board chessboard:9x6 \\
      --square 0.025 --save-views shots/ --out wrist.yaml
  grasprt calibrate-camera --factory realsense --resolution 640x480 --out rs.yaml
"""


@click.command("calibrate-camera", help=CALIBRATE_HELP)
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    help="Folder of board images (one camera, one resolution).",
)
@click.option(
    "--camera", "camera_spec", metavar="SPEC", help="Live camera, e.g. realsense, opencv:0."
)
@click.option(
    "--factory",
    "factory_source",
    metavar="SOURCE",
    help="Write a RealSense's factory intrinsics instead of calibrating: "
    "realsense, realsense:SERIAL or a recording (.db3/.bag).",
)
@click.option("--board", metavar="KIND:COLSxROWS", help="chessboard:9x6 or charuco:5x7.")
@click.option("--square", type=float, metavar="METRES", help="Side of one board square.")
@click.option("--marker", type=float, metavar="METRES", help="ChArUco marker side.")
@click.option("--dictionary", default="DICT_4X4_50", show_default=True, help="ChArUco dictionary.")
@click.option("--legacy-pattern", is_flag=True, help="ChArUco board printed by OpenCV before 4.6.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="camera_info YAML.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Result as JSON.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), help="Coverage plot PNG.")
@click.option("--camera-name", help="camera_name in the YAML (ROS matches it).")
@click.option("--rational", is_flag=True, help="8-coefficient model, for wide-angle lenses.")
@click.option(
    "--min-views",
    type=click.IntRange(min=4),
    default=8,
    show_default=True,
    help="Fewest views with a board to calibrate from (15-30 is better).",
)
@click.option(
    "--max-views",
    type=click.IntRange(min=4),
    default=40,
    show_default=True,
    help="Live: stop taking views at this many, covered or not.",
)
@click.option(
    "--timeout", type=float, default=600.0, show_default=True, help="Live: seconds to collect."
)
@click.option("--show", is_flag=True, help="Live: also show a window (needs OpenCV with a GUI).")
@click.option(
    "--save-views", type=click.Path(path_type=Path), help="Live: keep the views taken as PNGs."
)
@click.option("--resolution", metavar="WxH", help="--factory: the colour stream's size.")
def calibrate_camera_cmd(
    images: Path | None,
    camera_spec: str | None,
    factory_source: str | None,
    board: str | None,
    square: float | None,
    marker: float | None,
    dictionary: str,
    legacy_pattern: bool,
    out: Path,
    json_path: Path | None,
    plot_path: Path | None,
    camera_name: str | None,
    rational: bool,
    min_views: int,
    max_views: int,
    timeout: float,
    show: bool,
    save_views: Path | None,
    resolution: str | None,
) -> None:
    sources = [s for s in (images, camera_spec, factory_source) if s is not None]
    if len(sources) != 1:
        raise ConfigError("give exactly one of --images DIR, --camera SPEC or --factory SOURCE")
    for path, flag in ((out, "--out"), (json_path, "--json"), (plot_path, "--plot")):
        _check_output(path, flag)

    if factory_source is not None:
        width, height = _parse_resolution(resolution)
        intr = load_intrinsics(factory_source, width=width, height=height)
        save_camera_info(out, intr, camera_name or "realsense")
        if json_path is not None:
            _write_json(json_path, {**intr.to_dict(), "source": factory_source})
        click.echo(
            f"factory intrinsics {intr.width}x{intr.height}: fx {intr.fx:.3f} fy {intr.fy:.3f} "
            f"cx {intr.cx:.3f} cy {intr.cy:.3f} dist {list(intr.dist)}"
        )
        click.echo(f"wrote {out}")
        return

    if board is None or square is None:
        raise ConfigError("calibrating needs --board (e.g. chessboard:9x6) and --square (metres)")
    the_board = parse_board(
        board, square, marker=marker, dictionary=dictionary, legacy=legacy_pattern
    )
    views: list[View]
    if images is not None:
        found = detect_folder(images, the_board, progress=_echo)
        views, width, height = found.views, found.width, found.height
        _echo(f"board found in {len(views)} of {found.images} images")
        name = camera_name or "camera"
    else:
        assert camera_spec is not None
        if show:
            check_window_support()
        tracker = CoverageTracker(min_views=min_views, max_views=max_views)
        camera = _open_camera(camera_spec)
        camera.connect()
        try:
            live = collect_live(
                camera,
                the_board,
                tracker,
                _echo,
                LiveOptions(timeout_s=timeout),
                save_dir=save_views,
                show=show,
            )
        finally:
            camera.disconnect()
        views, width, height = live.views, live.width, live.height
        name = camera_name or re.sub(r"[^A-Za-z0-9_]", "_", camera_spec)

    result = calibrate(views, width, height, SolveOptions(min_views=min_views, rational=rational))
    data = plot_data(result, views, the_board, width, height)
    _report(result, data.progress)

    save_camera_info(out, result.intrinsics, name)
    plot_path = plot_path or out.with_suffix(".coverage.png")
    write_coverage_plot(plot_path, data)
    written = [str(out), str(plot_path)]
    if json_path is not None:
        doc = {**result.to_json(), "coverage": data.progress, "board": the_board.spec}
        _write_json(json_path, doc)
        written.append(str(json_path))
    click.echo("wrote " + ", ".join(written))


def _grab(camera: Camera, frames: int, timeout_s: float) -> Frame:
    """The ``frames``-th new frame (letting exposure settle), or a DriverError."""
    seen: set[int] = set()
    newest: Frame | None = None
    deadline = time.monotonic() + timeout_s
    while len(seen) < frames and time.monotonic() < deadline:
        f = camera.latest()
        if f is not None and f.seq not in seen:
            seen.add(f.seq)
            newest = f
        else:
            time.sleep(0.005)
    if newest is None:
        raise DriverError(f"camera {camera.name}: no frame within {timeout_s:g} s")
    return newest


VIEW_HELP = f"""Show what the bundle's segmenter will see through a camera.

Grabs a frame and writes one PNG with, side by side: the camera frame, the model
view (the frame remapped into the bundle's pinhole camera, grey where the camera
does not reach) and, with --bundle, the segmenter's mask (grey probability, green
above the bundle's threshold). Prints how the camera's field of view compares
with the bundle's.

Intrinsics come from --calibration ({SOURCE_HELP}), else from the camera driver.
Without --bundle the model camera is --model-camera or the reference 400x400,
80-degree camera. --camera sim renders the simulated wrist camera, through
--calibration FILE.yaml when given: what a dry run with that lens sees.

\b
Examples:
  grasprt view --camera realsense --bundle models/sphere --out view.png
  grasprt view --camera opencv:0 --calibration wrist.yaml \\
      --bundle models/sphere --out view.png
  grasprt view --camera sim --calibration wrist.yaml --out dry.png
"""


@click.command("view", help=VIEW_HELP)
@click.option("--camera", "camera_spec", metavar="SPEC", required=True, help="e.g. realsense.")
@click.option(
    "--bundle",
    type=click.Path(path_type=Path),
    help="Model bundle folder: its camera and segmenter.",
)
@click.option("--calibration", metavar="SOURCE", help="Camera intrinsics (see above).")
@click.option(
    "--model-camera",
    type=click.Path(path_type=Path),
    help="Without --bundle: a camera_info YAML for the model camera.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG to write.")
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Frames to let pass first (auto-exposure), the last is shown.",
)
@click.option(
    "--min-coverage",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_MIN_COVERAGE,
    show_default=True,
    help="Refuse a camera that sees less of the model's view than this.",
)
def view_cmd(
    camera_spec: str,
    bundle: Path | None,
    calibration: str | None,
    model_camera: Path | None,
    out: Path,
    frames: int,
    min_coverage: float,
) -> None:
    _check_output(out, "--out")
    loaded = None
    if bundle is not None:
        from grasprt.bundle import load_bundle

        loaded = load_bundle(bundle)
        model = loaded.camera
    elif model_camera is not None:
        model = load_camera_info(model_camera)
    else:
        model = REFERENCE_MODEL_CAMERA

    sim_file = None
    if camera_spec.strip() == "sim" and calibration is not None:
        if Path(calibration).suffix.lower() not in (".yaml", ".yml"):
            raise ConfigError("--camera sim takes --calibration FILE.yaml (the lens it renders)")
        sim_file = calibration
    camera = _open_camera(camera_spec, sim_file)
    camera.connect()
    try:
        frame = _grab(camera, frames, timeout_s=max(10.0, frames * 0.5))
        driver_intr = camera.intrinsics
    finally:
        camera.disconnect()
    h, w = frame.image.shape[:2]
    if calibration is not None:
        intr = load_intrinsics(calibration, width=w, height=h)
    elif driver_intr is not None:
        intr = driver_intr
    else:
        raise ConfigError(
            f"camera {camera_spec} reports no intrinsics: pass --calibration FILE.yaml "
            "(grasprt calibrate-camera writes one)"
        )
    intr = fit_to_resolution(intr, w, h)
    view = ModelView(intr, model, min_coverage=min_coverage)
    click.echo(view.describe())
    model_img = np.array(view.apply(frame.image))

    labels = [
        f"camera {w}x{h}",
        f"model view {model.width}x{model.height}, {view.coverage:.0%} seen",
    ]
    mask_img = None
    if loaded is not None:
        prob = Segmenter(loaded.segmenter_bytes)(model_img)
        threshold = float(loaded.mask_threshold)
        n = int((prob > threshold).sum())
        mask_img = mask_panel(prob, threshold, (model.width, model.height))
        labels.append(f"mask > {threshold:g}: {n} of {prob.size} px")
        click.echo(f"segmenter: {n} of {prob.size} mask pixels above {threshold:g}")
    canvas = compose_view(frame.image, model_img, labels, mask_img)
    if not cv2.imwrite(str(out), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
        raise ConfigError(f"{out}: cannot write the PNG")
    click.echo(f"wrote {out}")
