"""A tuned pick saved as an [inference] section: loadable by every command's --config,
stamped with the CPU it was measured on, and warned about on another CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bundle_factory import color_segmenter, ramp_controller, write_bundle

from grasprt.bundle import load_bundle
from grasprt.config import InferenceSettings, build_run_config
from grasprt.drivers.registry import robot_settings_types
from grasprt.errors import ConfigError
from grasprt.profiles import SAWYER
from grasprt.runtime import tuned
from grasprt.runtime.cpu import cpu_info
from grasprt.runtime.inference import Pipeline

OTHER = cpu_info("model name\t: AMD EPYC 7B12\nflags\t\t: fpu avx avx2 fma\n", cores=2)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(
        tmp_path_factory.mktemp("tuned") / "b",
        color_segmenter(),
        ramp_controller(list(SAWYER.neutral)),
    )


def _saved(tmp_path: Path, cfg: InferenceSettings, on=None) -> Path:
    path = tmp_path / "tuned.toml"
    tuned.save(str(path), cfg, on or cpu_info(), "openvino bf16: the fastest admitted")
    return path


def test_the_saved_section_loads_back_as_the_same_settings(tmp_path: Path) -> None:
    pick = InferenceSettings(
        provider="openvino", intra_op_threads=1, fused=False, precision="bf16", placement="split"
    )
    path = _saved(tmp_path, pick)
    text = path.read_text()
    assert text.startswith("# grasprt bench --tune") and "[inference]" in text
    got = build_run_config(path, {}, robots=robot_settings_types()).inference
    here = cpu_info()
    assert got == InferenceSettings(
        provider="openvino", intra_op_threads=1, fused=False, precision="bf16",
        placement="split", tuned_cpu=here.model, tuned_isa=tuple(here.isa),
    )
    # A flag still wins over the file, as for every other setting.
    flags = {"inference.precision": "fp32"}
    again = build_run_config(path, flags, robots=robot_settings_types())
    assert again.inference.precision == "fp32"


def test_the_same_cpu_is_not_elsewhere_and_another_is_named() -> None:
    here = cpu_info()
    same = InferenceSettings(tuned_cpu=here.model, tuned_isa=tuple(here.isa))
    assert tuned.elsewhere(same, here) is None
    assert tuned.elsewhere(InferenceSettings(), here) is None  # never tuned: nothing to say
    why = tuned.elsewhere(same, OTHER)
    assert why is not None and "AMD EPYC 7B12" in why
    if "avx512f" in here.isa:
        assert "without" in why and "avx512f" in why


def test_a_pick_from_another_cpu_warns_once_on_stderr(
    bundle_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = InferenceSettings(tuned_cpu="Some Other CPU 9000", tuned_isa=("amx_bf16",))
    Pipeline(load_bundle(bundle_dir), cfg)
    Pipeline(load_bundle(bundle_dir), cfg)
    err = capsys.readouterr().err
    assert err.count("grasprt: warning:") == 1
    assert "Some Other CPU 9000" in err and "fp32 needs no gate" in err


def test_save_refuses_a_bad_path_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder does not exist"):
        tuned.check_save_path(str(tmp_path / "no" / "x.toml"))
    with pytest.raises(ConfigError, match="TOML"):
        tuned.check_save_path(str(tmp_path / "x.json"))


def test_a_config_naming_an_unknown_placement_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[inference]\nplacement = "everywhere"\n')
    r = subprocess.run(
        [sys.executable, "-m", "grasprt.cli", "bench", "--config", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "placement" in r.stderr
