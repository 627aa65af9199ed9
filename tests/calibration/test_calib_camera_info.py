"""camera_info YAML: written, read back, and read as ROS's calibrator writes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grasprt.calibration.camera_info import load_camera_info, save_camera_info
from grasprt.errors import ConfigError
from grasprt.types import Intrinsics

# As ROS's camera_calibration writes ost.yaml (camera_calibration_parsers' layout, with
# its flow-style lists and spacing), for a 640x480 webcam.
ROS_OST_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [ 613.34215,    0.     ,  317.28623,
            0.     ,  615.10087,  243.96592,
            0.     ,    0.     ,    1.     ]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.102735, -0.219856, 0.001533, -0.002171, 0.000000]
rectification_matrix:
  rows: 3
  cols: 3
  data: [ 1.,  0.,  0.,
          0.,  1.,  0.,
          0.,  0.,  1.]
projection_matrix:
  rows: 3
  cols: 4
  data: [ 618.70807,    0.     ,  315.83997,    0.     ,
            0.     ,  623.53827,  244.40582,    0.     ,
            0.     ,    0.     ,    1.     ,    0.     ]
"""


def test_a_file_written_by_ros_camera_calibration_loads(tmp_path: Path):
    path = tmp_path / "ost.yaml"
    path.write_text(ROS_OST_YAML)
    intr = load_camera_info(path)
    assert (intr.width, intr.height) == (640, 480)
    # The raw camera's matrix K, not the rectified projection P.
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (613.34215, 615.10087, 317.28623, 243.96592)
    assert intr.dist == (0.102735, -0.219856, 0.001533, -0.002171, 0.0)


@pytest.mark.parametrize(
    "dist",
    [
        (),
        (-0.28, 0.09, 0.0008, -0.0006, -0.012),
        (0.4, -0.1, 0.001, 0.002, 0.01, 0.7, -0.05, 0.03),
    ],
)
def test_yaml_round_trips(tmp_path: Path, dist: tuple[float, ...]):
    intr = Intrinsics(1280, 720, 912.123456789, 911.5, 641.25, 359.75, dist)
    path = tmp_path / "cam.yaml"
    save_camera_info(path, intr, "wrist")
    assert load_camera_info(path) == intr
    doc = yaml.safe_load(path.read_text())
    assert list(doc)[:4] == ["image_width", "image_height", "camera_name", "camera_matrix"]
    assert doc["camera_name"] == "wrist"
    assert doc["distortion_model"] == ("rational_polynomial" if len(dist) == 8 else "plumb_bob")
    assert doc["rectification_matrix"]["data"] == [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    p = doc["projection_matrix"]
    assert (p["rows"], p["cols"], len(p["data"])) == (3, 4, 12)
    assert p["data"][0] == intr.fx and p["data"][6] == intr.cy


def test_numpy_numbers_are_written_as_plain_yaml(tmp_path: Path):
    import numpy as np

    intr = Intrinsics(640, 480, np.float64(500.5), np.float32(501.0), 320.0, 240.0)
    save_camera_info(tmp_path / "c.yaml", intr)
    assert "!!python" not in (tmp_path / "c.yaml").read_text()
    assert load_camera_info(tmp_path / "c.yaml").fy == 501.0


def _ros_file(tmp_path: Path, **changes: object) -> Path:
    doc = yaml.safe_load(ROS_OST_YAML)
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    path = tmp_path / "cam.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"distortion_model": "equidistant"}, "distortion_model 'equidistant' is not supported"),
        (
            {"distortion_model": "rational_polynomial"},
            "'rational_polynomial' takes 8 or 12 or 14 coefficients, the file has 5",
        ),
        ({"camera_matrix": None}, "'camera_matrix' must be a matrix"),
        ({"camera_matrix": {"rows": 3, "cols": 3, "data": [1, 2]}}, "must hold 9 numbers"),
        ({"image_width": "wide"}, "'image_width' and 'image_height' must be integers"),
        ({"image_height": -480}, "image size and focal lengths must be positive"),
        (
            {"distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.1, 0, 0, 0, "x"]}},
            "'distortion_coefficients' needs a 'data' list of numbers",
        ),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path: Path, changes: dict, message: str):
    path = _ros_file(tmp_path, **changes)
    with pytest.raises(ConfigError, match=message) as err:
        load_camera_info(path)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_non_finite_numbers_are_refused(tmp_path: Path):
    path = tmp_path / "nan.yaml"
    path.write_text(ROS_OST_YAML.replace("-0.002171, 0.000000]", "-0.002171, .nan]"))
    with pytest.raises(ConfigError, match="must be finite"):
        load_camera_info(path)


def test_unreadable_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read camera file"):
        load_camera_info(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_width: [640\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_camera_info(bad)
    with pytest.raises(ConfigError, match="cannot write camera file"):
        save_camera_info(tmp_path / "no" / "such" / "dir.yaml", Intrinsics(1, 1, 1.0, 1.0, 0, 0))
