"""`grasprt export` end to end, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bundle_factory import color_segmenter, constant_controller, write_bundle
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from grasprt.bundle import load_bundle  # noqa: E402
from grasprt.calibration.camera_info import save_camera_info  # noqa: E402
from grasprt.errors import GrasprtError  # noqa: E402
from grasprt.export.checkpoints import file_sha256  # noqa: E402
from grasprt.export.cli import export_cmd  # noqa: E402
from grasprt.export.models import Controller, Segmenter  # noqa: E402
from grasprt.types import Intrinsics  # noqa: E402

LAB_CAMERA = Intrinsics(400, 400, 310.0, 305.0, 201.0, 198.5)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(7)
    seg = Segmenter((4, 4, 6, 6))
    torch.save({"state_dict": seg.state_dict(), "arch": [4, 4, 6, 6]}, d / "seg.pt")
    torch.save(Controller().state_dict(), d / "ctrl.pt")
    (d / "notes.txt").write_text("this is not a checkpoint\n")
    save_camera_info(d / "lab.yaml", LAB_CAMERA)
    save_camera_info(d / "vga.yaml", Intrinsics(640, 480, 600.0, 600.0, 320.0, 240.0))
    return {p.stem: p for p in d.iterdir()}


def invoke(args: list[str]):
    return CliRunner().invoke(export_cmd, args, catch_exceptions=True)


def test_export_cli_end_to_end(ckpts: dict[str, Path], tmp_path: Path) -> None:
    out, report = tmp_path / "bundle", tmp_path / "export.json"
    scales = "0.02,0.02,0.03,0.03,0.04,0.04,0.05"
    result = invoke([
        "--segmenter", str(ckpts["seg"]), "--controller", str(ckpts["ctrl"]), "--out", str(out),
        "--rate-hz", "15", "--action-scale", scales, "--mask-threshold", "0.6",
        "--camera", str(ckpts["lab"]), "--json", str(report),
    ])  # fmt: skip
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "parity vs PyTorch" in result.output and "over 7 images" in result.output

    bundle = load_bundle(out)
    assert bundle.rate_hz == 15.0 and bundle.mask_threshold == 0.6
    assert [round(float(x), 6) for x in bundle.action_scale] == [
        float(x) for x in scales.split(",")
    ]
    assert bundle.camera == LAB_CAMERA
    prov = bundle.provenance
    assert prov["segmenter"]["checkpoint_sha256"] == file_sha256(ckpts["seg"])
    assert prov["controller"]["checkpoint_sha256"] == file_sha256(ckpts["ctrl"])
    assert prov["segmenter"]["widths"] == [4, 4, 6, 6]

    doc = json.loads(report.read_text())
    assert doc["bundle"]["segmenter"]["sha256"] == bundle.segmenter_sha256
    assert doc["parity"]["mask_max_abs_err"] <= 1e-4
    assert doc["parity"]["action_max_abs_err"] <= 1e-4


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--segmenter", "{missing}"], ("missing.pt", "no such checkpoint file")),
        (["--controller", "{notes}"], ("notes.txt", "not a PyTorch checkpoint")),
        (["--controller", "{seg}"], ("seg.pt", "'conv1.weight'", "controller")),
        (["--camera", "{vga}"], ("vga.yaml", "640x480", "400x400")),
        (["--camera", "{missing}"], ("missing.pt", "cannot read camera file")),
        (["--out", "{existing}"], ("already exists; pass --force",)),
        (["--robot", "ur5"], ("unknown robot profile 'ur5'",)),
    ],
    ids=["missing ckpt", "text ckpt", "swapped ckpt", "vga camera", "no camera", "exists", "robot"],
)
def test_export_cli_refuses_in_one_line(
    ckpts: dict[str, Path], tmp_path: Path, args: list[str], words: tuple[str, ...]
) -> None:
    existing = write_bundle(tmp_path / "old", color_segmenter(), constant_controller([0] * 8))
    paths = {**{k: str(v) for k, v in ckpts.items()}, "existing": str(existing)}
    paths["missing"] = str(tmp_path / "missing.pt")
    base = {
        "--segmenter": paths["seg"],
        "--controller": paths["ctrl"],
        "--out": str(tmp_path / "b"),
    }
    flag, value = args
    base[flag] = value.format(**paths)
    result = invoke([x for kv in base.items() for x in kv])
    assert isinstance(result.exception, GrasprtError), result.output
    message = str(result.exception)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("value", ["0.05,0.05", "fast", "-0.1", "0"])
def test_bad_action_scale_is_a_usage_error(
    ckpts: dict[str, Path], tmp_path: Path, value: str
) -> None:
    result = invoke([
        "--segmenter", str(ckpts["seg"]), "--controller", str(ckpts["ctrl"]),
        "--out", str(tmp_path / "b"), "--action-scale", value,
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "--action-scale" in result.output


def run_grasprt(*args: str, block_torch: bool = False) -> subprocess.CompletedProcess[str]:
    prelude = textwrap.dedent(
        """
        import importlib.abc, sys

        class BlockTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, BlockTorch())
        """
    )
    code = (prelude if block_torch else "import sys\n") + textwrap.dedent(
        """
        sys.argv = ["grasprt", *sys.argv[1:]]
        from grasprt.cli import main
        main()
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_cli_error_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from grasprt.cli import main

    missing = str(tmp_path / "nope.pt")
    with pytest.raises(SystemExit) as done:
        main(["export", "--segmenter", missing, "--controller", missing, "--out", str(tmp_path)])
    assert done.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "nope.pt: no such checkpoint file" in lines[0]


def test_export_without_torch_says_how_to_install(tmp_path: Path) -> None:
    proc = run_grasprt(
        "export", "--segmenter", "a.pt", "--controller", "b.pt", "--out", str(tmp_path / "b"),
        block_torch=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "pip install -e '.[export]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_export_puts_the_checkpoints_state_normalisation_into_the_graph(
    ckpts: dict[str, Path], tmp_path: Path
) -> None:
    import numpy as np
    import onnxruntime as ort

    from grasprt.export.models import ControllerGraph

    torch.manual_seed(3)
    net = Controller()
    offset = np.array([0.1, -0.4, 0.2, 1.1, -0.2, 0.8, 2.9, 0.5], np.float32)
    scale = np.array([0.3, 0.2, 0.15, 0.25, 0.2, 0.15, 0.05, 0.5], np.float32)
    norm = {"offset": offset.tolist(), "scale": scale.tolist()}
    ckpt = tmp_path / "ctrl_norm.pt"
    torch.save({"state_dict": net.state_dict(), "state_normalisation": norm}, ckpt)
    out = tmp_path / "bundle"
    result = invoke(
        ["--segmenter", str(ckpts["seg"]), "--controller", str(ckpt), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    recorded = bundle.provenance["controller"]["state_normalisation"]
    assert np.allclose(recorded["scale"], scale) and "checkpoint" in recorded["rule"]

    # The ONNX controller answers as the network does behind that normalisation, and
    # not as it would behind the exporter's default one.
    mask = (np.random.default_rng(0).random((1, 1, 100, 100)) > 0.99).astype(np.float32)
    state = (offset + scale * 0.3).reshape(1, 8).astype(np.float32)
    sess = ort.InferenceSession(str(out / "controller.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"mask": mask, "state": state})[0]
    with torch.no_grad():
        want = ControllerGraph(net, offset, scale)(torch.from_numpy(mask), torch.from_numpy(state))
    assert np.abs(got - want.numpy()).max() < 1e-4


def test_export_refuses_a_malformed_state_normalisation(
    ckpts: dict[str, Path], tmp_path: Path
) -> None:
    ckpt = tmp_path / "ctrl_bad.pt"
    bad = {"offset": [0.0] * 8, "scale": [1.0] * 7 + [0.0]}
    torch.save({"state_dict": Controller().state_dict(), "state_normalisation": bad}, ckpt)
    out = tmp_path / "bundle"
    result = invoke(
        ["--segmenter", str(ckpts["seg"]), "--controller", str(ckpt), "--out", str(out)]
    )
    assert isinstance(result.exception, GrasprtError), result.output
    message = str(result.exception)
    assert "\n" not in message
    assert "ctrl_bad.pt" in message and "scales must be finite and > 0" in message
    assert not out.exists()
