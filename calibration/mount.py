"""Where the camera sits on the arm: the mount file hand-eye calibration writes.

The mount is the camera's optical frame (z forward, x right, y down) in the link the
profile mounts the camera on (the Sawyer's ``right_l5``), as ``xyz`` (metres) and
``rpy`` (radians, URDF's fixed-axis roll, pitch, yaw). Its *offset* is the same pose
seen from the URDF's optical frame: ``T_urdf^-1 T_mount``, which is how ``[sim]
camera_mount_error`` is given too, so a dry run's error and its solved offset compare
directly.

At run time (``--mount FILE.yaml``) the rotation of the offset is corrected exactly in
the model view (a rotation about the optical centre is a homography); the translation
cannot be (it depends on depth) and is refused beyond a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from grasprt.errors import ConfigError
from grasprt.kinematics import transform
from grasprt.profiles import RobotProfile

LINK_NAMES = {"sawyer": "right_l{}"}


def parent_link(profile: RobotProfile) -> str:
    """The name of the link the camera rides on (a joint's child link)."""
    pattern = LINK_NAMES.get(profile.name, f"{profile.name}_link{{}}")
    return pattern.format(profile.camera.parent_joint_index)


def urdf_mount(profile: RobotProfile) -> np.ndarray:
    """4x4: the URDF's camera optical frame in the camera's parent link."""
    optical = np.eye(4)
    optical[:3, :3] = profile.camera_optical
    return transform(profile.camera.xyz, profile.camera.rpy) @ optical


def rpy_of(r: np.ndarray) -> tuple[float, float, float]:
    """URDF roll, pitch, yaw of a rotation (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    pitch = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    if abs(r[2, 0]) < 1 - 1e-9:
        roll = float(np.arctan2(r[2, 1], r[2, 2]))
        yaw = float(np.arctan2(r[1, 0], r[0, 0]))
    else:  # gimbal lock: put it all in yaw
        roll, yaw = 0.0, float(np.arctan2(-r[0, 1], r[1, 1]))
    return roll, pitch, yaw


def rotation_angle_deg(r: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))))


@dataclass(frozen=True)
class Mount:
    """A camera mount: its pose in the parent link and its offset from the URDF's."""

    robot: str
    parent: str
    pose: np.ndarray  # 4x4 optical frame in the parent link
    offset: np.ndarray  # 4x4 the same in the URDF's optical frame
    source: str = ""

    @classmethod
    def of(cls, profile: RobotProfile, pose: np.ndarray, source: str = "") -> Mount:
        offset = np.linalg.inv(urdf_mount(profile)) @ pose
        return cls(profile.name, parent_link(profile), pose, offset, source)

    @property
    def rotation(self) -> np.ndarray:
        """The offset's rotation: camera rays (true frame) into the URDF's optical frame."""
        return self.offset[:3, :3]

    @property
    def translation_mm(self) -> float:
        return float(np.linalg.norm(self.offset[:3, 3]) * 1000)

    @property
    def rotation_deg(self) -> float:
        return rotation_angle_deg(self.offset[:3, :3])

    def describe(self) -> str:
        t = self.offset[:3, 3] * 1000
        r = np.degrees(rpy_of(self.offset[:3, :3]))
        return (
            f"camera mount {self.source or '(given)'}: {self.rotation_deg:.2f} deg "
            f"(rpy {r[0]:+.2f} {r[1]:+.2f} {r[2]:+.2f}) and {self.translation_mm:.1f} mm "
            f"(xyz {t[0]:+.1f} {t[1]:+.1f} {t[2]:+.1f}) off the URDF's"
        )

    def to_dict(self) -> dict[str, Any]:
        """What a record keeps and the file says (plain numbers)."""
        return {
            "robot": self.robot,
            "parent": self.parent,
            "xyz": [float(v) for v in self.pose[:3, 3]],
            "rpy": [float(v) for v in rpy_of(self.pose[:3, :3])],
            "offset": {
                "xyz": [float(v) for v in self.offset[:3, 3]],
                "rpy": [float(v) for v in rpy_of(self.offset[:3, :3])],
                "translation_mm": round(self.translation_mm, 3),
                "rotation_deg": round(self.rotation_deg, 4),
            },
            "source": self.source,
        }


def _vector(doc: dict, key: str, where: str) -> tuple[float, float, float]:
    v = doc.get(key)
    ok = isinstance(v, list) and len(v) == 3
    ok = ok and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    if not ok or not all(np.isfinite(v)):
        unit = "metres" if key == "xyz" else "radians"
        raise ConfigError(
            f"{where}: {key} must be a list of 3 numbers ({unit}), as grasprt "
            "calibrate-hand-eye writes"
        )
    return float(v[0]), float(v[1]), float(v[2])


def load_mount(path: str | Path, profile: RobotProfile) -> Mount:
    """A mount file for `profile`'s camera, or one ConfigError line saying what is wrong."""
    p = Path(path)
    where = f"--mount {p}"
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as e:
        raise ConfigError(f"{where}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "bad YAML"
        raise ConfigError(f"{where}: not valid YAML ({first})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: not a mount file (expected keys robot, parent, xyz, rpy)")
    robot, parent = doc.get("robot"), doc.get("parent")
    if robot != profile.name:
        raise ConfigError(f"{where}: robot is {robot!r}, this run drives {profile.name!r}")
    if parent != parent_link(profile):
        raise ConfigError(
            f"{where}: parent is {parent!r}, the {profile.name} camera rides on "
            f"{parent_link(profile)!r}"
        )
    pose = transform(_vector(doc, "xyz", where), _vector(doc, "rpy", where))
    mount = Mount.of(profile, pose, str(p))
    if mount.translation_mm > 200 or mount.rotation_deg > 45:
        raise ConfigError(
            f"{where}: {mount.translation_mm:.0f} mm and {mount.rotation_deg:.0f} deg off the "
            "URDF's mount: not this camera's mount"
        )
    return mount


def check_translation(mount: Mount, limit_mm: float) -> None:
    """The model view cannot correct a shifted camera; refuse beyond `limit_mm`."""
    if mount.translation_mm > limit_mm:
        t = mount.offset[:3, 3] * 1000
        raise ConfigError(
            f"--mount {mount.source}: the camera sits {mount.translation_mm:.1f} mm "
            f"(xyz {t[0]:+.1f} {t[1]:+.1f} {t[2]:+.1f}) off the URDF's mount, beyond the "
            f"{limit_mm:g} mm the model view can ignore (only rotation is corrected): "
            "move the camera, or raise --mount-max-offset"
        )
