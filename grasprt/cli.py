"""The `grasprt` command line.

Errors a user can fix (bad flags, bundles, files, missing devices) print one line and
exit 2; a run that ends on a safety fault exits 3; a signalled stop exits 128+signal.
Subcommands are imported only when used, so `grasprt --help` stays quick and the
runtime never pulls in what it does not need (torch above all).
"""

from __future__ import annotations

import importlib
import sys

import click

from grasprt.errors import FaultStop, GrasprtError

# name -> "module:attribute" of a click command, imported on first use.
COMMANDS = {
    "run": ("grasprt.run_cmd:run_cmd", "Run the grasping loop on a robot (sim by default)."),
    "check": ("grasprt.run_cmd:check_cmd", "Validate a model bundle against the contract."),
    "export": ("grasprt.export.cli:export_cmd", "Export PyTorch checkpoints to a model bundle."),
    "bench": ("grasprt.bench_cmd:bench_cmd", "Profile the loop's latency, stage by stage."),
    "soak": ("grasprt.soak_cmd:soak_cmd", "Run the loop for N cycles; report what grows."),
    "fuzz-limiter": (
        "grasprt.fuzz_cmd:fuzz_cmd",
        "Fuzz the limiter against an independent oracle.",
    ),
    "devices": ("grasprt.drivers.devices:devices_cmd", "List cameras and serial ports."),
    "calibrate-camera": (
        "grasprt.calibration.cli:calibrate_camera_cmd",
        "Calibrate a camera's intrinsics from a board.",
    ),
    "replay": (
        "grasprt.replay_cmd:replay_cmd",
        "A record through a bundle again, offline: bit-exact, or how far off.",
    ),
    "eval": ("grasprt.eval_cmd:eval_cmd", "Grasp success in the sim under the paper's protocol."),
    "view": ("grasprt.calibration.cli:view_cmd", "Write a PNG: camera frame, model view, mask."),
    "calibrate-hand-eye": (
        "grasprt.handeye_cmd:calibrate_hand_eye_cmd",
        "Measure where the camera sits on the arm (hand-eye), from a board on the table.",
    ),
    "twin": (
        "grasprt.twin_cmd:twin_cmd",
        "Serve a simulated Sawyer over ROS, as the real robot does (Intera's side).",
    ),
    "faults": (
        "grasprt.faults_cmd:faults_cmd",
        "Inject each fault into a real run: time to hold, record, exit status.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n, (target, _) in COMMANDS.items() if _available(target)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module, attr = entry[0].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            raise GrasprtError(f"'grasprt {name}' is not available: {e}") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, h) for n, (t, h) in COMMANDS.items() if _available(t)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _available(target: str) -> bool:
    import importlib.util

    module = target.split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="grasprt")
def cli() -> None:
    """grasprt: run learned, vision-based grasping controllers on a robot.

    \b
    First steps:
      grasprt run --robot sim                 the loop on the simulated Sawyer
      grasprt run --robot sim --episodes 3 --record run.mcap --json run.json
      grasprt check models/placeholder        validate a bundle
      grasprt devices                         what is plugged in
      grasprt bench                           where the milliseconds go
    """


def main(argv: list[str] | None = None) -> None:
    prog = "grasprt"
    try:
        rv = cli.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(0)
    except click.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else prog
        hint = f" (see '{cmd} --help')"
        click.echo(f"{cmd}: error: {e.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo(f"{prog}: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"{prog}: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except GrasprtError as e:
        click.echo(f"{prog}: error: {e}", err=True)
        sys.exit(e.exit_code)
    except FaultStop as e:
        click.echo(f"{prog}: fault stop: {e.reason}", err=True)
        sys.exit(FaultStop.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
