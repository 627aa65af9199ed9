"""Camera intrinsics files in ROS's ``camera_info`` YAML layout (read and written).

The same layout ``camera_calibration`` writes and ``camera_info_manager`` reads, so a
file from either side works on the other.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from grasprt.errors import ConfigError
from grasprt.types import Intrinsics


def _matrix(doc: dict, key: str, rows: int, cols: int, path: Path) -> list[float]:
    try:
        m = doc[key]
        data = [float(v) for v in m["data"]]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"{path}: '{key}' must be a matrix with a 'data' list of numbers"
        ) from None
    if len(data) != rows * cols:
        raise ConfigError(f"{path}: '{key}' must hold {rows * cols} numbers, has {len(data)}")
    return data


# How many coefficients each ROS distortion model OpenCV can apply takes (OpenCV reads
# the model from the count alone; ROS names it). Fisheye ("equidistant") needs
# OpenCV's separate fisheye functions and is not supported.
_MODELS = {"plumb_bob": (4, 5), "rational_polynomial": (8, 12, 14)}


def check_distortion(model: object, dist: tuple[float, ...], path: Path) -> None:
    if model in (None, ""):
        if dist and len(dist) not in (4, 5, 8, 12, 14):
            raise ConfigError(
                f"{path}: {len(dist)} distortion coefficients fit no model OpenCV knows"
            )
        return
    if model not in _MODELS:
        known = ", ".join(_MODELS)
        raise ConfigError(f"{path}: distortion_model '{model}' is not supported (use {known})")
    if dist and len(dist) not in _MODELS[model]:
        want = " or ".join(str(n) for n in _MODELS[model])
        raise ConfigError(
            f"{path}: distortion_model '{model}' takes {want} coefficients, "
            f"the file has {len(dist)}"
        )


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
            raise ConfigError(
                f"{path}: 'distortion_coefficients' needs a 'data' list of numbers"
            ) from None
    check_distortion(doc.get("distortion_model"), dist, path)
    if not all(math.isfinite(v) for v in (*k, *dist)):
        raise ConfigError(f"{path}: camera_matrix and distortion_coefficients must be finite")
    if width <= 0 or height <= 0 or k[0] <= 0 or k[4] <= 0:
        raise ConfigError(f"{path}: image size and focal lengths must be positive")
    if dist and not any(dist):
        dist = ()
    return Intrinsics(width, height, k[0], k[4], k[2], k[5], dist)


def save_camera_info(path: str | Path, intr: Intrinsics, camera_name: str = "camera") -> None:
    # Plain floats: numpy scalars would make safe_dump refuse the document.
    fx, fy, cx, cy = float(intr.fx), float(intr.fy), float(intr.cx), float(intr.cy)
    k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    dist = [float(v) for v in intr.dist] if intr.dist else [0.0] * 5
    model = "rational_polynomial" if len(dist) >= 8 else "plumb_bob"
    doc = {
        "image_width": int(intr.width),
        "image_height": int(intr.height),
        "camera_name": camera_name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": k},
        "distortion_model": model,
        "distortion_coefficients": {"rows": 1, "cols": len(dist), "data": dist},
        "rectification_matrix": {
            "rows": 3,
            "cols": 3,
            "data": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        },
        "projection_matrix": {
            "rows": 3,
            "cols": 4,
            "data": [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        },
    }
    try:
        # Lists of numbers inline, as ROS's calibrator writes them.
        Path(path).write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    except OSError as e:
        raise ConfigError(f"{path}: cannot write camera file ({e.strerror})") from None
