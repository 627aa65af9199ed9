"""The one configuration path: flags > file > a command's defaults > the types' own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from grasprt.config import (
    PROVIDERS,
    BenchSettings,
    EvalSettings,
    InferenceSettings,
    LimiterSettings,
    RunConfig,
    WatchdogSettings,
    build_run_config,
)
from grasprt.drivers.registry import robot_settings_types
from grasprt.drivers.sawyer import SawyerSettings
from grasprt.drivers.sim.config import SimSettings
from grasprt.errors import ConfigError
from grasprt.options import KEYS

ROBOTS = robot_settings_types()
PARTS = {
    "limiter": LimiterSettings,
    "watchdog": WatchdogSettings,
    "inference": InferenceSettings,
    "bench": BenchSettings,
    "eval": EvalSettings,
}


def build(tmp_path: Path | None = None, text: str | None = None, **flags: object) -> RunConfig:
    file = None
    if text is not None:
        assert tmp_path is not None
        file = tmp_path / "c.toml"
        file.write_text(text)
    return build_run_config(file, flags, robots=ROBOTS)


def test_every_flag_names_a_setting_that_exists() -> None:
    # A flag mapped to a misspelt key would be refused at run time; this finds it now.
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    for param, key in KEYS.items():
        part, dot, name = key.partition(".")
        if not dot:
            assert part in run_fields, param
        elif part == "robot":
            assert any(name in {f.name for f in dataclasses.fields(c)} for c in ROBOTS.values())
        else:
            assert name in {f.name for f in dataclasses.fields(PARTS[part])}, param


def test_flags_win_over_the_file_and_the_file_over_the_defaults(tmp_path: Path) -> None:
    text = '[run]\nepisodes = 4\nseed = 2\n[limiter]\nfloor_z = 0.1\n[sim]\ngap = "large"\n'
    cfg = build(tmp_path, text, seed=7, **{"robot.moving": True})
    assert (cfg.episodes, cfg.seed, cfg.limiter.floor_z) == (4, 7, 0.1)
    assert cfg.robot_settings == SimSettings(gap="large", moving=True)
    assert cfg.limiter.floor_height(None) == pytest.approx(0.102)


def test_a_commands_defaults_sit_below_the_file(tmp_path: Path) -> None:
    defaults = {"clock": "sim"}
    assert build_run_config(None, {}, robots=ROBOTS, defaults=defaults).clock == "sim"
    (tmp_path / "w.toml").write_text('[run]\nclock = "wall"\n')
    cfg = build_run_config(tmp_path / "w.toml", {}, robots=ROBOTS, defaults=defaults)
    assert cfg.clock == "wall"


def test_the_chosen_robot_gets_its_own_settings_type(tmp_path: Path) -> None:
    cfg = build(tmp_path, "[sawyer]\nspeed_ratio = 0.1\n", robot="sawyer")
    assert cfg.robot_settings == SawyerSettings(speed_ratio=0.1)
    assert build(robot="sim").robot_settings == SimSettings()


@pytest.mark.parametrize(
    ("text", "flags", "words"),
    [
        ("[sawyer]\nspeed_ratioo = 0.1\n", {}, "speed_ratioo"),  # checked on the sim too
        ("[run]\nfast = true\n", {}, "'fast' is now clock"),
        ("[run]\nrealtime = false\n", {}, "sched"),
        ("[nowhere]\nx = 1\n", {}, "[nowhere]"),
        ("", {"robot": "sawyer", "robot.gap": "large"}, "--gap does not apply to --robot sawyer"),
        ('[run]\nclock = "fast"\n', {}, "--clock must be one of wall, sim"),
        ("[limiter]\nvelocity_factor = 2\n", {}, "[limiter] velocity_factor must be in (0, 1]"),
        ("[watchdog]\nframe_hold_s = 2.0\n", {}, "frame_hold_s (2.0) must be below"),
        ('[inference]\nprovider = "npu"\n', {}, "[inference] provider must be one of"),
        ("[bench]\ncycles = 0\n", {}, "[bench] cycles must be >= 1"),
    ],
)
def test_bad_settings_are_one_line_naming_them(
    tmp_path: Path, text: str, flags: dict, words: str
) -> None:
    with pytest.raises(ConfigError) as e:
        build(tmp_path, text, **flags)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_the_runtime_maps_every_provider_the_config_offers() -> None:
    from grasprt.runtime.inference import PROVIDERS as ORT_NAMES

    assert set(ORT_NAMES) == set(PROVIDERS)
