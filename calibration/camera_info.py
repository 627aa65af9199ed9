"""Camera intrinsics files in ROS's ``camera_info`` YAML layout (read and written).

The same layout ``camera_calibration`` writes and ``camera_info_manager`` reads, so a
file from either side works on the other.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from grasprt.errors import ConfigError
from grasprt.types import Intrinsics


def _matrix(doc: dict, key: str, rows: int, cols: int, path: Path) -> list[float]:
    try:
        m = doc[key]
        data = [float(v) for v in m["data"]]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: '{key}' must be a matrix with a 'data' list") from None
    if len(data) != rows * cols:
        raise ConfigError(f"{path}: '{key}' must hold {rows * cols} numbers, has {len(data)}")
    return data


def load_camera_info(path: str | Path) -> Intrinsics:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read camera file ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a camera_info YAML mapping")
    try:
        width, height = int(doc["image_width"]), int(doc["image_height"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: 'image_width' and 'image_height' must be integers") from None
    k = _matrix(doc, "camera_matrix", 3, 3, path)
    dist: tuple[float, ...] = ()
    if "distortion_coefficients" in doc:
        d = doc["distortion_coefficients"]
        try:
            dist = tuple(float(v) for v in d["data"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{path}: 'distortion_coefficients' needs a 'data' list") from None
    if width <= 0 or height <= 0 or k[0] <= 0 or k[4] <= 0:
        raise ConfigError(f"{path}: image size and focal lengths must be positive")
    if dist and not any(dist):
        dist = ()
    return Intrinsics(width, height, k[0], k[4], k[2], k[5], dist)


def save_camera_info(path: str | Path, intr: Intrinsics, camera_name: str = "camera") -> None:
    k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    dist = list(intr.dist) if intr.dist else [0.0] * 5
    model = "rational_polynomial" if len(dist) >= 8 else "plumb_bob"
    doc = {
        "image_width": intr.width,
        "image_height": intr.height,
        "camera_name": camera_name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": k},
        "distortion_model": model,
        "distortion_coefficients": {"rows": 1, "cols": len(dist), "data": dist},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        "projection_matrix": {
            "rows": 3,
            "cols": 4,
            "data": [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        },
    }
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
