"""The side-by-side picture ``grasprt view`` writes: camera frame, model view, mask.

What a user wants to look at before trusting a camera: is the lens's view where the
bundle expects it, how much of the model's view is grey fill, and does the segmenter
find the target in it.
"""

from __future__ import annotations

import cv2
import numpy as np

from grasprt.errors import BundleError

LABEL_H = 28  # px of label strip above each panel
GAP = 8  # px between panels
MASK_COLOUR = (0, 220, 0)  # RGB of target pixels in the mask panel


class Segmenter:
    """A bundle's segmenter in ONNX Runtime: 400x400x3 uint8 RGB -> 100x100 probabilities."""

    def __init__(self, onnx_bytes: bytes, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                onnx_bytes, opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ORT raises its own exception types, all one-liners
            raise BundleError(f"segmenter.onnx: ONNX Runtime cannot load it ({e})") from None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(image[None], dtype=np.uint8)
        (mask,) = self.session.run(["mask"], {"image": batch})
        return np.asarray(mask, np.float32).reshape(mask.shape[-2], mask.shape[-1])


def _panel(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def mask_panel(prob: np.ndarray, threshold: float, size: tuple[int, int]) -> np.ndarray:
    """Probability in grey, pixels above ``threshold`` in green, at ``size`` (w, h)."""
    big = cv2.resize(prob.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)
    grey = np.clip(big * 255.0, 0, 255).astype(np.uint8)
    out = np.repeat(grey[..., None], 3, axis=2)
    out[big > threshold] = MASK_COLOUR
    return out


def _text_width(text: str) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]


def _fit_label(text: str, width: int) -> str:
    """``text``, cut short with '..' to fit ``width`` px (Hershey fonts are ASCII only)."""
    if _text_width(text) <= width:
        return text
    while text and _text_width(text + "..") > width:
        text = text[:-1]
    return text + ".."


def compose_view(
    camera_rgb: np.ndarray,
    model_rgb: np.ndarray,
    labels: list[str],
    mask_rgb: np.ndarray | None = None,
) -> np.ndarray:
    """Panels side by side at the model view's height, each under a label; RGB out."""
    height = model_rgb.shape[0]
    panels = [_panel(camera_rgb, height), model_rgb]
    if mask_rgb is not None:
        panels.append(_panel(mask_rgb, height))
    if len(labels) != len(panels):
        raise ValueError(f"{len(panels)} panels need {len(panels)} labels, got {len(labels)}")
    width = sum(p.shape[1] for p in panels) + GAP * (len(panels) - 1)
    canvas = np.full((height + LABEL_H, width, 3), 255, np.uint8)
    x = 0
    for panel, label in zip(panels, labels, strict=True):
        w = panel.shape[1]
        canvas[LABEL_H:, x : x + w] = panel
        label = _fit_label(label, w - 8)
        cv2.putText(
            canvas,
            label,
            (x + 4, LABEL_H - 9),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        x += w + GAP
    return canvas
