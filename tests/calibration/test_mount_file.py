"""Mount files: what calibrate-hand-eye writes, `--mount` reads back; a file of the wrong
form is one ConfigError line naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from grasprt.calibration.mount import (
    Mount,
    check_translation,
    load_mount,
    parent_link,
    rpy_of,
    urdf_mount,
)
from grasprt.errors import ConfigError
from grasprt.kinematics import Kinematics, rpy_matrix, transform
from grasprt.profiles import SAWYER

SAW = {"robot": "sawyer", "parent": "right_l5"}
ZERO = {"xyz": [0, 0, 0], "rpy": [0, 0, 0]}
ERROR = transform((0.004, -0.004, 0.005657), (0.0302, -0.0302, 0.0302))


def write(tmp: Path, doc: object) -> Path:
    p = tmp / "mount.yaml"
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def test_urdf_mount_is_the_kinematics_camera() -> None:
    q = np.array(SAWYER.neutral)
    poses = Kinematics(SAWYER).poses(q)
    link = poses.links[SAWYER.camera.parent_joint_index]
    assert np.allclose(link @ urdf_mount(SAWYER), poses.camera, atol=1e-12)
    assert parent_link(SAWYER) == "right_l5"


def test_rpy_round_trip() -> None:
    for rpy in [(0.1, -0.2, 0.3), (1.2, 0.4, -2.9), (-0.5, 1.5, 0.0)]:
        assert np.allclose(rpy_matrix(*rpy_of(rpy_matrix(*rpy))), rpy_matrix(*rpy), atol=1e-12)


def test_written_mount_reads_back_with_its_offset(tmp_path: Path) -> None:
    mount = Mount.of(SAWYER, urdf_mount(SAWYER) @ ERROR)
    loaded = load_mount(write(tmp_path, mount.to_dict()), SAWYER)
    assert np.allclose(loaded.offset, ERROR, atol=1e-9)
    assert loaded.translation_mm == pytest.approx(8.0, abs=0.01)
    assert loaded.rotation_deg == pytest.approx(3.012, abs=0.01)
    assert "8.0 mm" in loaded.describe() and "3.01 deg" in loaded.describe()


def test_the_urdf_mount_itself_has_no_offset(tmp_path: Path) -> None:
    loaded = load_mount(write(tmp_path, Mount.of(SAWYER, urdf_mount(SAWYER)).to_dict()), SAWYER)
    assert loaded.translation_mm < 1e-9 and loaded.rotation_deg < 1e-6


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("xyz: [0, 0", "not valid YAML"),
        ("- 1\n- 2\n", "not a mount file"),
        ({**SAW, **ZERO, "robot": "ur5"}, "robot is 'ur5'"),
        ({**SAW, **ZERO, "parent": "right_hand"}, "rides on 'right_l5'"),
        ({**SAW, "rpy": [0, 0, 0]}, "xyz must be a list of 3 numbers"),
        ({**SAW, "xyz": [0, 0, 0], "rpy": [0, "a", 0]}, "rpy must be"),
        ({**SAW, **ZERO}, "not this camera's mount"),
    ],
)
def test_malformed_mount_files(tmp_path: Path, doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        load_mount(write(tmp_path, doc), SAWYER)
    assert "\n" not in str(e.value) and "--mount" in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_mount(tmp_path / "none.yaml", SAWYER)


def test_translation_beyond_the_limit_is_refused_naming_it() -> None:
    mount = Mount.of(SAWYER, urdf_mount(SAWYER) @ ERROR, "m.yaml")
    check_translation(mount, 10.0)
    with pytest.raises(ConfigError, match=r"8\.0 mm \(xyz \+4\.0 -4\.0 \+5\.7\).*beyond the 5 mm"):
        check_translation(mount, 5.0)
