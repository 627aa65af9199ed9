"""Map any camera's frames into the bundle's 400x400 pinhole camera.

One remap table is built at start-up (undistort and re-project from the camera's
intrinsics to the bundle's); per frame the loop pays one ``cv2.remap`` into a
preallocated buffer. When the two cameras are the same, nothing is done at all.
"""

from __future__ import annotations

import cv2
import numpy as np

from grasprt.types import Intrinsics

NEUTRAL_FILL = 114  # mid grey: neither bright nor dark for a segmenter, like letterboxing


class ModelView:
    def __init__(self, camera: Intrinsics, model: Intrinsics, fill: int = NEUTRAL_FILL) -> None:
        self.camera = camera
        self.model = model
        self.fill = fill
        self.identity = camera == model
        self.out = np.full((model.height, model.width, 3), fill, dtype=np.uint8)
        self._map1: np.ndarray | None = None
        self._map2: np.ndarray | None = None
        if not self.identity:
            dist = np.array(camera.dist, dtype=np.float64) if camera.dist else None
            self._map1, self._map2 = cv2.initUndistortRectifyMap(
                camera.matrix(),
                dist,
                None,
                model.matrix(),
                (model.width, model.height),
                cv2.CV_16SC2,
            )
            # The fraction of model pixels the camera actually sees.
            mx, my = cv2.convertMaps(self._map1, self._map2, cv2.CV_32FC1)
            inside = (mx >= 0) & (mx <= camera.width - 1) & (my >= 0) & (my <= camera.height - 1)
            self.coverage = float(inside.mean())
        else:
            self.coverage = 1.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The model-view image (a view of an internal buffer, valid until the next call)."""
        if self.identity:
            return image
        cv2.remap(
            image,
            self._map1,
            self._map2,
            cv2.INTER_LINEAR,
            dst=self.out,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(self.fill, self.fill, self.fill),
        )
        return self.out
