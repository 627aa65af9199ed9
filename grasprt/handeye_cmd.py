"""`grasprt calibrate-hand-eye`: measure where the camera sits on the arm.

The board lies fixed on the table in the camera's view. From the start pose grasprt
finds it (PnP through the URDF's mount says roughly where it lies), plans views around
it within the joint limits and above the floor, and drives there slowly, every step
through the safety limiter (on a real arm each move is confirmed first, unless
--yes). With --manual the operator moves the arm instead (zero-G) and presses Enter
at each pose. Each pose's board corners and joint angles are kept; the mount is
solved by OpenCV's five hand-eye methods, refined on all corners, and written as
YAML with its offset from the URDF's mount (the file ``--mount`` reads).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
import cv2
import numpy as np
import yaml

from grasprt.calibration.boards import Board, Detection, parse_board
from grasprt.calibration.handeye import MIN_POSES, Observation, solve_hand_eye
from grasprt.calibration.handeye_plan import PlanLimits, plan_views, route
from grasprt.calibration.mount import Mount, rpy_of, urdf_mount
from grasprt.config import RunConfig, build_run_config
from grasprt.errors import ConfigError, DriverError
from grasprt.kinematics import Kinematics
from grasprt.types import Drivers, Frame, Intrinsics

SETTLE_S = 1.0  # after a move: the arm's lag, and a fresh frame of the still arm
FRAME_TIMEOUT_S = 5.0


def _config(robot: str, camera: str | None, calibration: str | None, config_file: str | None,
            clock: str | None, board_doc: dict) -> RunConfig:  # fmt: skip
    from grasprt.drivers.registry import robot_kind, robot_settings_types

    kind = robot_kind(robot)
    flags: dict[str, Any] = {"robot": robot, "camera": camera, "calibration": calibration}
    flags["clock"] = clock or ("sim" if kind.simulated else "wall")
    cfg = build_run_config(config_file, flags, robots=robot_settings_types())
    settings = cfg.robot_settings
    if kind.simulated and getattr(settings, "board", None) is None:
        # The simulator has no board unless told: lay the one being asked for.
        settings = dataclasses.replace(settings, board=board_doc)
        cfg = dataclasses.replace(cfg, robot_settings=settings)
    return cfg


def _frame(drivers: Drivers, after: float) -> Frame:
    """The first frame captured after `after` (clock time): the arm still in it."""
    clock, camera = drivers.clock, drivers.camera
    deadline = clock.now() + FRAME_TIMEOUT_S
    while True:
        f = camera.latest()
        if f is not None and f.stamp >= after:
            return f
        if clock.now() > deadline:
            raise DriverError(f"camera {camera.name}: no new frame within {FRAME_TIMEOUT_S:g} s")
        clock.sleep_until(clock.now() + 0.01)


def _intrinsics(cfg: RunConfig, drivers: Drivers, frame: Frame) -> Intrinsics:
    from grasprt.calibration.intrinsics_source import load_intrinsics
    from grasprt.calibration.resolution import fit_to_resolution

    h, w = frame.image.shape[:2]
    if cfg.calibration:
        intr = load_intrinsics(cfg.calibration, width=w, height=h)
    elif drivers.camera.intrinsics is not None:
        intr = drivers.camera.intrinsics
    else:
        raise ConfigError(
            f"camera {drivers.camera.name} has no intrinsics: pass --calibration FILE.yaml "
            "(grasprt calibrate-camera)"
        )
    return fit_to_resolution(intr, w, h)


def _detect(board: Board, frame: Frame) -> Detection | None:
    return board.detect(cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY))


class Session:
    """The connected arm and camera, the limiter, and the poses seen so far."""

    def __init__(self, cfg: RunConfig, drivers: Drivers, board: Board, speed: float) -> None:
        from grasprt.drivers.registry import robot_kind
        from grasprt.profiles import get_profile
        from grasprt.runtime.command_gate import CommandGate
        from grasprt.runtime.limiter import Limiter, LimiterConfig

        self.cfg, self.drivers, self.board, self.speed = cfg, drivers, board, speed
        self.profile = get_profile(robot_kind(cfg.robot).profile)
        self.kin = Kinematics(self.profile)
        lcfg = LimiterConfig.resolve(cfg.limiter, 10.0, drivers.table_z)
        if lcfg.floor is None:
            raise ConfigError(
                "calibrate-hand-eye: no floor: set [limiter] floor_z (the table top in the "
                "base frame) so the planned poses keep the hand above it"
            )
        self.limiter = Limiter(lcfg, self.profile, self.kin)
        self.gate = CommandGate(drivers.robot)
        self.observations: list[Observation] = []
        self.missed = 0

    def move(self, q: np.ndarray) -> None:
        from grasprt.runtime.move import move_to

        d = self.drivers
        move_to(d.robot, self.gate, self.limiter, d.clock, q, speed=self.speed)

    def observe(self) -> Detection | None:
        from grasprt.runtime.move import settle

        d = self.drivers
        q = settle(d.robot, d.clock, SETTLE_S)
        frame = _frame(d, d.clock.now())
        det = _detect(self.board, frame)
        if det is None:
            self.missed += 1
            return None
        link = self.kin.links(q)[self.profile.camera.parent_joint_index]
        self.observations.append(Observation(link, det, tuple(float(v) for v in q)))
        return det


def _board_outline(s: Session, intr: Intrinsics, det: Detection, q: np.ndarray) -> np.ndarray:
    """The board's outline in the base frame, as the URDF's mount places the camera."""
    from grasprt.calibration.handeye import board_in_camera

    cam = s.kin.poses(q).camera @ board_in_camera(det, intr)
    outline = s.board.outline().astype(np.float64)
    return outline @ cam[:3, :3].T + cam[:3, 3]


def _plan_and_visit(s: Session, intr: Intrinsics, det: Detection, poses: int, distance: float,
                    confirm: bool) -> None:  # fmt: skip
    q0 = s.drivers.robot.read_state().q
    outline = _board_outline(s, intr, det, q0)
    assert s.limiter.config.floor is not None
    limits = PlanLimits(s.limiter.config.floor + 0.04, s.cfg.limiter.joint_margin + 0.05)
    plan = plan_views(s.kin, q0, outline, intr, limits, count=poses, distance=distance)
    moves = route(s.kin, q0, plan, limits.floor_z)
    n = sum(view for _, view in moves)
    if n < MIN_POSES:
        raise ConfigError(
            f"only {n} views of the board {distance:.2f} m away are reachable above the "
            f"floor (at least {MIN_POSES} needed): lay the board nearer the arm's middle "
            "reach, or change --distance"
        )
    click.echo(
        f"board {s.board.spec} found {np.linalg.norm(outline.mean(0)[:2]):.2f} m out; "
        f"{n} poses planned {distance:.2f} m from it"
    )
    i = 0
    for q, view in moves:
        what = f"pose {i + 1}/{n}" if view else "the start pose (on the way)"
        if confirm and not click.confirm(f"move to {what}?", default=True):
            raise click.Abort()
        s.move(q)
        if not view:
            continue
        i += 1
        seen = s.observe()
        click.echo(f"pose {i}/{n}: " + (
            f"{len(seen.image_points)} corners" if seen is not None else "board not detected"
        ))  # fmt: skip


def _manual(s: Session) -> None:
    """Zero-G: the operator poses the arm, Enter records, q + Enter ends."""
    click.echo("move the arm (zero-G) so the camera sees the board; Enter records, q ends")
    while True:
        answer = click.prompt("pose", default="", show_default=False)
        if answer.strip().lower() == "q":
            return
        seen = s.observe()
        click.echo(
            f"pose {len(s.observations)}: {len(seen.image_points)} corners"
            if seen is not None
            else "board not detected: not recorded"
        )


def _report(s: Session, intr: Intrinsics, out: Path, plot: Path | None, json_path: Path | None,
            truth: tuple | None) -> dict[str, Any]:  # fmt: skip
    result = solve_hand_eye(s.observations, intr)
    mount = Mount.of(s.profile, result.mount, str(out))
    doc = mount.to_dict()
    doc.pop("source")
    urdf = urdf_mount(s.profile)
    doc["urdf"] = {
        "xyz": [float(v) for v in urdf[:3, 3]],
        "rpy": [float(v) for v in rpy_of(urdf[:3, :3])],
    }
    doc["frame"] = "camera optical frame (z forward, x right, y down) in the parent link"
    doc["solve"] = {
        "poses": len(s.observations),
        "poses_without_board": s.missed,
        "board": s.board.spec,
        "reprojection_rms_px": round(result.rms_px, 4),
        "view_rms_px": [round(v, 4) for v in result.view_rms_px],
        "rotation_spread_deg": round(result.rotation_spread_deg, 2),
        "axis_spread_deg": round(result.axis_spread_deg, 2),
        "methods": {
            name: {"mm": round(a["mm"], 3), "deg": round(a["deg"], 4)}
            for name, a in result.agreement().items()
        },
    }
    if truth is not None:
        doc["solve"]["sim_truth"] = _against_truth(mount, truth)
    header = (
        "# grasprt calibrate-hand-eye: where the camera sits on the arm.\n"
        "# xyz (m), rpy (rad, URDF fixed-axis) of the optical frame in `parent`; `offset`\n"
        "# is the same seen from the URDF's optical frame. `grasprt run --mount` reads it.\n"
    )
    try:
        out.write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write ({e.strerror})") from None
    if plot is not None:
        from grasprt.calibration.handeye_figure import plot_hand_eye

        plot_hand_eye(result, mount, plot)
    if json_path is not None:
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _against_truth(mount: Mount, truth: tuple) -> dict[str, float]:
    from grasprt.calibration.mount import rotation_angle_deg
    from grasprt.kinematics import transform

    true = transform(*truth)
    d = np.linalg.inv(true) @ mount.offset
    return {
        "error_mm": round(float(np.linalg.norm(mount.offset[:3, 3] - true[:3, 3]) * 1000), 4),
        "error_deg": round(rotation_angle_deg(d[:3, :3]), 4),
    }


def _print(doc: dict[str, Any], out: Path) -> None:
    off, solve = doc["offset"], doc["solve"]
    t = [v * 1000 for v in off["xyz"]]
    r = np.degrees(off["rpy"])
    click.echo(
        f"mount: {off['translation_mm']:.2f} mm (xyz {t[0]:+.2f} {t[1]:+.2f} {t[2]:+.2f}) and "
        f"{off['rotation_deg']:.3f} deg (rpy {r[0]:+.3f} {r[1]:+.3f} {r[2]:+.3f}) off the URDF's"
    )
    click.echo(
        f"{solve['poses']} poses, reprojection {solve['reprojection_rms_px']:.3f} px RMS, "
        f"rotation spread {solve['rotation_spread_deg']:.0f} deg about axes "
        f"{solve['axis_spread_deg']:.0f} deg apart"
    )
    methods = "  ".join(
        f"{n} {a['mm']:.2f} mm {a['deg']:.3f} deg" for n, a in solve["methods"].items()
    )
    click.echo(f"methods against the refined mount: {methods}")
    if "sim_truth" in solve:
        st = solve["sim_truth"]
        click.echo(f"sim truth: {st['error_mm']:.3f} mm and {st['error_deg']:.4f} deg off")
    click.echo(f"wrote {out}")


HELP_EPILOG = """\b
Examples:
  grasprt calibrate-hand-eye --robot sim --config docs/mount_error.toml --out mount.yaml
  grasprt calibrate-hand-eye --robot sawyer --config docs/twin.toml --yes \\
      --camera ros:/io/internal_camera/right_hand_camera/image_raw --out mount.yaml
  grasprt calibrate-hand-eye --robot sawyer --config arm.toml --camera realsense \\
      --board charuco:7x5 --square 0.04 --marker 0.03 --manual --out mount.yaml
  grasprt run --mount mount.yaml ...

Exit status: 0 written; 2 bad input, a failed solve, or a move the limiter or the robot
stopped (one line; the arm holds); 1 a move declined at its prompt (the arm holds)."""


@click.command("calibrate-hand-eye", epilog=HELP_EPILOG)
@click.option("--robot", type=click.Choice(["sim", "sawyer"]), default="sim", show_default=True)
@click.option("--camera", default=None, metavar="SPEC", help="Default: the robot's own camera.")
@click.option("--calibration", default=None, metavar="SOURCE", help="The camera's intrinsics.")
@click.option("--board", "board_spec", default="charuco:7x5", show_default=True,
              help="chessboard:COLSxROWS (inner corners) or charuco:COLSxROWS (squares).")
@click.option("--square", type=float, default=0.04, show_default=True, help="Square side, m.")
@click.option("--marker", type=float, default=0.03, show_default=True,
              help="ChArUco marker side, m.")
@click.option("--dictionary", default="DICT_4X4_50", show_default=True)
@click.option("--poses", type=click.IntRange(5, 60), default=15, show_default=True)
@click.option("--distance", type=click.FloatRange(0.15, 0.8), default=0.3, show_default=True,
              help="Camera to board centre, m.")
@click.option("--speed", type=click.FloatRange(0.01, 0.3), default=0.1, show_default=True,
              help="Fraction of the joints' velocity limits.")
@click.option("--manual", is_flag=True, help="Zero-G: the operator poses the arm, Enter records.")
@click.option("--yes", is_flag=True, help="Do not ask before each move (sim: never asked).")
@click.option("--clock", type=click.Choice(["wall", "sim"]), default=None,
              help="[default: sim on a simulated robot, else wall]")
@click.option("--config", "config_file", default=None, metavar="FILE.toml",
              help="[limiter] floor_z, [sim] camera_mount_error, ...")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The mount YAML.")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="A PNG of the solve.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
def calibrate_hand_eye_cmd(robot: str, camera: str | None, calibration: str | None,
                           board_spec: str, square: float, marker: float, dictionary: str,
                           poses: int, distance: float, speed: float, manual: bool, yes: bool,
                           clock: str | None, config_file: str | None, out: Path,
                           plot: Path | None, json_path: Path | None) -> int:  # fmt: skip
    """Measure the camera's mount on the arm from a board on the table (hand-eye).

    The board lies fixed in the camera's view at the start pose. grasprt plans views
    around it (joint limits, the floor, the whole board in view) and drives there
    slowly through the limiter, confirming each move on a real arm (--yes: not);
    --manual leaves the posing to the operator (zero-G, Enter records, q ends). The
    mount is solved by the hand-eye methods (their agreement reported), refined on
    every corner, and written as YAML against the URDF's mount: the file --mount
    reads. Prefer a ChArUco board: a chessboard's corner order can flip between views
    that turn it far.
    """
    from grasprt.bundle import load_bundle
    from grasprt.drivers.registry import build_drivers, robot_kind

    board = parse_board(board_spec, square, marker=marker, dictionary=dictionary)
    board_doc = {"spec": board.spec, "square": square, "marker": marker}
    cfg = _config(robot, camera, calibration, config_file, clock, board_doc)
    simulated = robot_kind(robot).simulated
    drivers = build_drivers(cfg, load_bundle(cfg.bundle))
    truth = getattr(cfg.robot_settings, "camera_mount_error", None) if simulated else None
    d = drivers
    session = Session(cfg, d, board, speed)  # refuses a missing floor before connecting
    d.camera.connect()
    try:
        d.robot.connect()
        try:
            first = _frame(d, d.clock.now())
            intr = _intrinsics(cfg, d, first)
            det = _detect(board, first)
            if manual:
                _manual(session)
            elif det is None:
                raise ConfigError(
                    f"board {board.spec} not seen from the start pose: lay it in the "
                    "camera's view (grasprt view shows it) or use --manual"
                )
            else:
                _plan_and_visit(session, intr, det, poses, distance, confirm=not (yes or simulated))
        finally:
            d.robot.hold()
            d.robot.disconnect()
    finally:
        d.camera.disconnect()
    if truth is not None:
        from grasprt.drivers.sim.config import mount_error

        truth = mount_error(truth)
    doc = _report(session, intr, out, plot, json_path, truth)
    _print(doc, out)
    return 0
