"""What a cycle, an event or a shadow decision becomes on the wire: one encoder for the
flight record and the live view, so both carry the same topics in the same schemas.

Everything here runs in a writer or sender thread, never in the loop: JSON, base64,
JPEG/PNG, the model view's remap and forward kinematics for the arm's frames.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import cv2
import numpy as np

from grasprt.calibration.model_view import ModelView
from grasprt.kinematics import Kinematics
from grasprt.runtime.cycle_record import CycleRecord
from grasprt.runtime.record_schema import (
    CAMERA_FRAME_ID,
    CAMERA_INFO_TOPIC,
    CYCLE_TOPIC,
    EVENT_TOPIC,
    FRAME_TOPIC,
    MASK_FRAME_ID,
    MASK_TOPIC,
    MODEL_VIEW_FRAME_ID,
    MODEL_VIEW_TOPIC,
    SHADOW_TOPIC,
    TF_TOPIC,
    encode_message,
)
from grasprt.types import Intrinsics

FRAME_FORMATS = {"jpeg": ".jpg", "png": ".png"}

# (topic, log time ns, sequence, JSON bytes)
Message = tuple[str, int, int, bytes]


def time_ns(t: float | None) -> int:
    """Loop-clock seconds as MCAP nanoseconds (unsigned: a bad time becomes 0)."""
    if t is None or not math.isfinite(t) or t < 0:
        return 0
    return round(t * 1e9)


def stamp(ns: int) -> dict[str, int]:
    sec, nsec = divmod(ns, 1_000_000_000)
    return {"sec": sec, "nsec": nsec}


def mask_to_mono8(mask: np.ndarray) -> np.ndarray:
    """A mask as a 2-D mono8 image: 255 where the target is.

    Floats are probabilities or a 0/1 mask (``round(p * 255)``); bools map to 0/255;
    integers are taken as grey levels already.
    """
    m = np.asarray(mask)
    if m.ndim > 2 and all(n == 1 for n in m.shape[:-2]):
        m = m.reshape(m.shape[-2:])
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (or 1 x 1 x H x W), got shape {m.shape}")
    if m.dtype == np.bool_:
        return m.astype(np.uint8) * 255
    if np.issubdtype(m.dtype, np.floating):
        p = np.nan_to_num(m.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        return np.rint(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(m.dtype, np.integer):
        return np.clip(m, 0, 255).astype(np.uint8)
    raise ValueError(f"mask dtype {m.dtype} is not a number")


def encode_frame(frame: np.ndarray, fmt: str, jpeg_quality: int) -> bytes:
    """An RGB (or grey) uint8 image as JPEG/PNG bytes."""
    img = np.asarray(frame)
    if img.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1)):
        raise ValueError(f"frame must be H x W x 3 RGB or H x W grey, got shape {img.shape}")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(FRAME_FORMATS[fmt], img, params)
    if not ok:
        raise ValueError(f"cv2.imencode could not encode a {img.shape} frame as {fmt}")
    return buf.tobytes()


def quaternion(r: np.ndarray) -> dict[str, float]:
    """A rotation matrix as a unit quaternion (x, y, z, w), w >= 0."""
    m = np.asarray(r, dtype=np.float64)
    d = np.diag(m)
    w = math.sqrt(max(0.0, 1.0 + d[0] + d[1] + d[2])) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + d[0] - d[1] - d[2])) / 2.0, m[2, 1] - m[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - d[0] + d[1] - d[2])) / 2.0, m[0, 2] - m[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - d[0] - d[1] + d[2])) / 2.0, m[1, 0] - m[0, 1])
    n = math.sqrt(x * x + y * y + z * z + w * w)
    return {"x": x / n, "y": y / n, "z": z / n, "w": w / n}


def _image(ns: int, frame_id: str, data: bytes, fmt: str) -> dict[str, Any]:
    return {
        "timestamp": stamp(ns),
        "frame_id": frame_id,
        "data": base64.b64encode(data).decode(),
        "format": fmt,
    }


class MessageEncoder:
    """Turns what the loop hands a sink into messages of the record's topics.

    ``kin`` adds the arm's frames (``/grasprt/tf``) to each cycle; a camera's
    intrinsics (:meth:`set_camera`, once connected) add the model view and the camera
    calibration next to each frame. Not thread-safe: one writer thread owns one.
    """

    def __init__(
        self, frame_format: str = "jpeg", jpeg_quality: int = 90, kin: Kinematics | None = None
    ) -> None:
        self.frame_format = frame_format
        self.jpeg_quality = jpeg_quality
        self.kin = kin
        self._view: ModelView | None = None
        self._camera: Intrinsics | None = None

    def set_camera(self, camera: Intrinsics, model: Intrinsics) -> None:
        # Its own ModelView: the loop's one writes into a buffer the loop owns.
        self._camera = camera
        self._view = ModelView(camera, model, min_coverage=0.0)

    def cycle(
        self,
        t: float,
        seq: int,
        cycle: CycleRecord,
        mask: np.ndarray | None,
        frame: np.ndarray | None,
    ) -> list[Message]:
        ns = time_ns(t)
        out: list[Message] = [(CYCLE_TOPIC, ns, seq, encode_message(cycle.to_json()))]
        if mask is not None:
            out.append((MASK_TOPIC, ns, seq, encode_message(self._mask(ns, mask))))
        if frame is not None:
            out.extend(self._frame(ns, seq, frame))
        if self.kin is not None:
            out.append((TF_TOPIC, ns, seq, encode_message(self._transforms(ns, cycle.q))))
        return out

    def event(self, t: float, seq: int, kind: str, detail: dict[str, Any]) -> list[Message]:
        detail = dict(detail)
        episode = detail.pop("episode", None)
        body = {"time": t, "kind": kind, "episode": episode, "detail": detail}
        return [(EVENT_TOPIC, time_ns(t), seq, encode_message(body))]

    def shadow(self, t: float, seq: int, message: dict[str, Any]) -> list[Message]:
        return [(SHADOW_TOPIC, time_ns(t), seq, encode_message(message))]

    def _mask(self, ns: int, mask: np.ndarray) -> dict[str, Any]:
        mono = np.ascontiguousarray(mask_to_mono8(mask))
        return {
            "timestamp": stamp(ns),
            "frame_id": MASK_FRAME_ID,
            "width": mono.shape[1],
            "height": mono.shape[0],
            "encoding": "mono8",
            "step": mono.shape[1],
            "data": base64.b64encode(mono.tobytes()).decode(),
        }

    def _frame(self, ns: int, seq: int, frame: np.ndarray) -> list[Message]:
        fmt, q = self.frame_format, self.jpeg_quality
        data = encode_frame(frame, fmt, q)
        out = [(FRAME_TOPIC, ns, seq, encode_message(_image(ns, CAMERA_FRAME_ID, data, fmt)))]
        if self._view is None or self._camera is None:
            return out
        # A camera that is the bundle's own needs no remap: the view is the frame.
        view = data if self._view.identity else encode_frame(self._view.apply(frame), fmt, q)
        out.append(
            (MODEL_VIEW_TOPIC, ns, seq, encode_message(_image(ns, MODEL_VIEW_FRAME_ID, view, fmt)))
        )
        out.append((CAMERA_INFO_TOPIC, ns, seq, encode_message(self._calibration(ns))))
        return out

    def _calibration(self, ns: int) -> dict[str, Any]:
        c = self._camera
        assert c is not None
        k = [c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0]
        return {
            "timestamp": stamp(ns),
            "frame_id": CAMERA_FRAME_ID,
            "width": c.width,
            "height": c.height,
            "distortion_model": "rational_polynomial" if len(c.dist) > 5 else "plumb_bob",
            "D": [float(v) for v in c.dist],
            "K": k,
            "R": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "P": [c.fx, 0.0, c.cx, 0.0, 0.0, c.fy, c.cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        }

    def _transforms(self, ns: int, q: Any) -> dict[str, Any]:
        assert self.kin is not None
        profile = self.kin.profile
        poses = self.kin.poses(np.asarray(q, dtype=np.float64))
        links = zip(profile.joints, poses.links, strict=True)
        named = [(j.name.replace("_j", "_l"), t) for j, t in links]
        named += [("right_hand", poses.hand), (CAMERA_FRAME_ID, poses.camera)]
        return {
            "transforms": [
                {
                    "timestamp": stamp(ns),
                    "parent_frame_id": profile.base_link,
                    "child_frame_id": name,
                    "translation": dict(zip("xyz", (float(v) for v in pose[:3, 3]), strict=True)),
                    "rotation": quaternion(pose[:3, :3]),
                }
                for name, pose in named
            ]
        }
