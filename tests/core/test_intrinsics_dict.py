"""Intrinsics to and from a dict: one definition, used by bundles and calibration alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundle_factory import SIM_CAMERA, color_segmenter, constant_controller, write_bundle

from grasprt.bundle import describe, load_bundle
from grasprt.calibration.solve import CalibrationResult
from grasprt.errors import BundleError, ConfigError
from grasprt.types import Intrinsics

PLUMB_BOB = Intrinsics(640, 480, 612.5, 611.25, 318.75, 241.5, (-0.28, 0.09, 1e-4, -2e-4, -0.01))
RATIONAL = Intrinsics(1280, 720, 905.0, 904.0, 640.5, 360.25, tuple(np.linspace(-0.3, 0.2, 8)))
PINHOLE = Intrinsics(400, 400, 238.35, 238.35, 199.5, 199.5)


@pytest.mark.parametrize("intr", [PLUMB_BOB, RATIONAL, PINHOLE], ids=["plumb_bob", "8", "none"])
def test_round_trip_through_json_keeps_everything(intr: Intrinsics) -> None:
    text = json.dumps(intr.to_dict())
    back = Intrinsics.from_dict(json.loads(text))
    assert back == intr
    assert back.dist == intr.dist and isinstance(back.dist, tuple)


def test_keys_are_the_bundle_cameras_then_dist() -> None:
    d = PLUMB_BOB.to_dict()
    assert list(d) == [*SIM_CAMERA, "dist"]
    assert d["dist"] == list(PLUMB_BOB.dist)


def test_numpy_values_become_plain_numbers() -> None:
    # OpenCV and pyrealsense2 hand back numpy scalars; json.dumps refuses float32.
    intr = Intrinsics(
        np.int64(640), np.int64(480), np.float32(600.5), np.float32(601.0),
        np.float64(320.0), np.float32(240.0), tuple(np.zeros(5, np.float32)),
    )  # fmt: skip
    d = json.loads(json.dumps(intr.to_dict()))
    assert Intrinsics.from_dict(d) == Intrinsics(640, 480, 600.5, 601.0, 320.0, 240.0, (0.0,) * 5)
    assert all(type(v) is int for v in (d["width"], d["height"]))


def test_reads_ros_style_size_names_and_no_dist() -> None:
    # What `grasprt calibrate-camera --json` wrote before it used to_dict.
    old = {"image_width": 640, "image_height": 480, "fx": 600.0, "fy": 601.0}
    back = Intrinsics.from_dict({**old, "cx": 319.5, "cy": 239.5})
    assert back == Intrinsics(640, 480, 600.0, 601.0, 319.5, 239.5)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"fy": None}, "'fy' is missing"),
        ({"width": None}, "'width' is missing"),
        ({"height": True}, "'height' must be a positive integer"),
        ({"width": 640.0}, "'width' must be a positive integer"),
        ({"cx": "319.5"}, "'cx' must hold finite numbers"),
        ({"dist": [0.1, float("nan")]}, "'dist' must hold finite numbers"),
        ({"dist": 0.1}, "'dist' must be a list"),
    ],
)
def test_bad_dicts_are_one_line_config_errors(change: dict, words: str) -> None:
    d = {**PLUMB_BOB.to_dict(), **change}
    d = {k: v for k, v in d.items() if v is not None}
    with pytest.raises(ConfigError, match=words) as info:
        Intrinsics.from_dict(d, where="wrist.json")
    assert str(info.value).startswith("wrist.json: ") and "\n" not in str(info.value)


def test_calibration_json_reads_back_as_the_solved_camera() -> None:
    result = CalibrationResult(PLUMB_BOB, 0.2, {"a.png": 0.2}, {}, {"fx": 0.5})
    doc = json.loads(json.dumps(result.to_json()))
    assert Intrinsics.from_dict(doc) == PLUMB_BOB
    assert doc["rms"] == 0.2 and doc["views_used"] == 1


def bundle_with_camera(tmp_path: Path, **camera: object) -> Path:
    return write_bundle(
        tmp_path / "b",
        color_segmenter(),
        constant_controller([0.0] * 8),
        camera={**SIM_CAMERA, **camera},
    )


def test_describe_round_trips_to_the_bundle_camera(tmp_path: Path) -> None:
    bundle = load_bundle(bundle_with_camera(tmp_path, fx=300.0, fy=301.0, cx=200.0))
    d = json.loads(json.dumps(describe(bundle)))
    assert d["camera"]["dist"] == []
    assert Intrinsics.from_dict(d["camera"]) == bundle.camera
    assert bundle.camera == Intrinsics(400, 400, 300.0, 301.0, 200.0, SIM_CAMERA["cy"])


def test_bundle_camera_may_say_dist_only_when_it_is_none(tmp_path: Path) -> None:
    assert load_bundle(bundle_with_camera(tmp_path / "zero", dist=[0.0] * 5)).camera.dist == ()
    with pytest.raises(BundleError, match=r"'camera\.dist' must be empty") as info:
        load_bundle(bundle_with_camera(tmp_path / "barrel", dist=[-0.28, 0.09, 0.0, 0.0, 0.0]))
    assert "\n" not in str(info.value)
    with pytest.raises(BundleError, match=r"'camera\.dist' must be a list"):
        load_bundle(bundle_with_camera(tmp_path / "text", dist="none"))
