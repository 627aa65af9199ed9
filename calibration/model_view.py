"""Map any camera's frames into the bundle's 400x400 pinhole camera.

One remap table is built at start-up (undistort and re-project from the camera's
intrinsics to the bundle's); per frame the loop pays one ``cv2.remap`` into a
preallocated buffer. When the two cameras are the same, nothing is done at all.

Pixel coordinates follow OpenCV and ROS: the centre of the top-left pixel is (0, 0), so
a camera centred on a 400-pixel-wide image has ``cx = 199.5``. The bundle's ``camera``
is read the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

from grasprt.errors import ConfigError
from grasprt.types import Intrinsics

NEUTRAL_FILL = 114  # mid grey: neither bright nor dark for a segmenter, like letterboxing
DEFAULT_MIN_COVERAGE = 0.5

# The paper's wrist camera: about 80 degrees across, square. Used where no bundle says
# otherwise (``grasprt view`` without ``--bundle``); a bundle's own camera always wins.
_REF_SIDE = 400
_REF_FOCAL = (_REF_SIDE / 2) / float(np.tan(np.radians(40.0)))
REFERENCE_MODEL_CAMERA = Intrinsics(
    _REF_SIDE, _REF_SIDE, _REF_FOCAL, _REF_FOCAL, (_REF_SIDE - 1) / 2, (_REF_SIDE - 1) / 2
)


def fold_radius(dist: tuple[float, ...]) -> float:
    """The normalized radius beyond which the radial distortion turns back on itself.

    Past it a polynomial lens model maps rays far outside the lens's view back into the
    image, which would paint a mirrored ghost ring into the model view; model pixels out
    there are treated as unseen.
    """
    if not dist:
        return np.inf
    d = list(dist) + [0.0] * (8 - len(dist))
    k1, k2, k3, k4, k5, k6 = d[0], d[1], d[4], d[5], d[6], d[7]
    r = np.linspace(0.0, 20.0, 200001)
    r2 = r * r
    g = r * (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    falling = np.nonzero(np.diff(g) <= 0)[0]
    return float(r[falling[0]]) if len(falling) else np.inf


def field_of_view_deg(intr: Intrinsics) -> tuple[float, float]:
    """Horizontal and vertical field of view through the image's edges, distortion included."""
    edges = np.array(
        [
            [-0.5, intr.cy],
            [intr.width - 0.5, intr.cy],
            [intr.cx, -0.5],
            [intr.cx, intr.height - 0.5],
        ],
        np.float64,
    ).reshape(-1, 1, 2)
    dist = np.array(intr.dist, np.float64) if intr.dist else None
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
    n = cv2.undistortPoints(edges, intr.matrix(), dist, criteria=criteria).reshape(-1, 2)
    h = np.degrees(np.arctan(n[1, 0]) - np.arctan(n[0, 0]))
    v = np.degrees(np.arctan(n[3, 1]) - np.arctan(n[2, 1]))
    return float(h), float(v)


def same_camera(a: Intrinsics, b: Intrinsics) -> bool:
    """Equal up to the rounding a camera file's decimals bring (far below a pixel)."""
    if (a.width, a.height) != (b.width, b.height):
        return False
    if not np.allclose([a.fx, a.fy, a.cx, a.cy], [b.fx, b.fy, b.cx, b.cy], rtol=0, atol=1e-3):
        return False
    n = max(len(a.dist), len(b.dist))
    da = np.pad(np.asarray(a.dist, np.float64), (0, n - len(a.dist)))
    db = np.pad(np.asarray(b.dist, np.float64), (0, n - len(b.dist)))
    return bool(np.allclose(da, db, rtol=0, atol=1e-7))


class ModelView:
    """The camera's frames as the bundle's camera would have taken them.

    ``coverage`` is the fraction of model pixels the camera sees; the rest are ``fill``.
    ``fov_gap_deg`` is the model's field of view minus the camera's (horizontal,
    vertical): positive where the model sees wider than the camera. A camera covering
    less than ``min_coverage`` of the model's view is refused with a ``ConfigError``.

    ``rotation`` (3x3) is a mounting error to undo: the camera's true optical frame in
    the one the model expects (``Mount.rotation``). Each model ray is turned into the
    true camera's frame before it is looked up, so the view is the one a camera
    mounted exactly right would have taken (from the same centre).
    """

    def __init__(
        self,
        camera: Intrinsics,
        model: Intrinsics,
        fill: int = NEUTRAL_FILL,
        *,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        rotation: np.ndarray | None = None,
    ) -> None:
        self.camera = camera
        self.model = model
        self.fill = fill
        self.rotation = None
        if rotation is not None and not np.allclose(rotation, np.eye(3), rtol=0, atol=1e-9):
            self.rotation = np.asarray(rotation, np.float64)
        self.identity = same_camera(camera, model) and self.rotation is None
        self.out = np.full((model.height, model.width, 3), fill, dtype=np.uint8)
        self._map1: np.ndarray | None = None
        self._map2: np.ndarray | None = None
        cam_fov, model_fov = field_of_view_deg(camera), field_of_view_deg(model)
        self.fov_gap_deg = (model_fov[0] - cam_fov[0], model_fov[1] - cam_fov[1])
        # Model pixels per camera pixel at the centre: below 1 the model view is a
        # downsampled camera image, above 1 it is blown up (and blurred).
        self.scale = model.fx / camera.fx
        self.coverage = 1.0
        if not self.identity:
            self._build_maps()
        if self.coverage < min_coverage:
            raise ConfigError(
                f"the camera ({camera.width}x{camera.height}) sees only {self.coverage:.0%} of "
                f"the bundle's {model.width}x{model.height} view (minimum {min_coverage:.0%}); "
                f"the model's field of view is {self.fov_gap_deg[0]:+.1f} deg wide, "
                f"{self.fov_gap_deg[1]:+.1f} deg tall of the camera's: wrong lens or "
                "calibration file? (--min-coverage lowers the bar)"
            )

    def _build_maps(self) -> None:
        cam, model = self.camera, self.model
        dist = np.array(cam.dist, dtype=np.float64) if cam.dist else None
        # OpenCV turns each new-camera ray by R^-1 into the source camera's frame: the
        # true camera's ray is rotation^T times the model's, so R is the rotation itself.
        mx, my = cv2.initUndistortRectifyMap(
            cam.matrix(),
            dist,
            self.rotation,
            model.matrix(),
            (model.width, model.height),
            cv2.CV_32FC1,
        )
        limit = fold_radius(cam.dist)
        if np.isfinite(limit):
            u = np.broadcast_to((np.arange(model.width) - model.cx) / model.fx, mx.shape)
            v = (np.arange(model.height) - model.cy) / model.fy
            v = np.broadcast_to(v[:, None], mx.shape)
            if self.rotation is not None:  # the ray as the true camera sees it
                rt = self.rotation.T
                z = rt[2, 0] * u + rt[2, 1] * v + rt[2, 2]
                u, v = (
                    (rt[0, 0] * u + rt[0, 1] * v + rt[0, 2]) / z,
                    (rt[1, 0] * u + rt[1, 1] * v + rt[1, 2]) / z,
                )
            r = np.hypot(u, v)
            mx[r >= limit] = -1e4
        # The tolerance absorbs float rounding at the image's border rows and columns.
        eps = 1e-3
        inside = (
            (mx >= -eps) & (mx <= cam.width - 1 + eps) & (my >= -eps) & (my <= cam.height - 1 + eps)
        )
        self.coverage = float(inside.mean())
        # Fixed-point maps remap about twice as fast; their 1/32-pixel steps are far
        # below what a 100x100 mask can see.
        self._map1, self._map2 = cv2.convertMaps(mx, my, cv2.CV_16SC2)

    def describe(self) -> str:
        """One line for start-up: how the camera's view becomes the model's."""
        c, m = self.camera, self.model
        if self.identity:
            return f"model view: the camera is the bundle's camera ({m.width}x{m.height}): no remap"
        ch, cv = field_of_view_deg(c)
        mh, mv = field_of_view_deg(m)
        line = (
            f"model view: camera {c.width}x{c.height} ({ch:.1f}x{cv:.1f} deg"
            f"{', undistorted' if c.dist else ''}) -> model {m.width}x{m.height} "
            f"({mh:.1f}x{mv:.1f} deg), {self.scale:.2f} model px per camera px"
        )
        gh, gv = self.fov_gap_deg
        if self.rotation is not None:
            angle = np.degrees(np.arccos(np.clip((np.trace(self.rotation) - 1) / 2, -1, 1)))
            line += f", turned {angle:.2f} deg for the camera's mount"
        if self.coverage < 0.999:
            line += (
                f"; the model sees {max(gh, 0):.1f} deg wider and {max(gv, 0):.1f} deg taller "
                f"than the camera: the camera fills {self.coverage:.0%} of it, the rest is "
                f"grey ({self.fill})"
            )
        else:
            line += "; the camera fills all of it"
        return line

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The model-view image (a view of an internal buffer, valid until the next call)."""
        if image.shape[0] != self.camera.height or image.shape[1] != self.camera.width:
            raise ConfigError(
                f"camera frame is {image.shape[1]}x{image.shape[0]} but its intrinsics are for "
                f"{self.camera.width}x{self.camera.height}"
            )
        if self.identity:
            return image
        return cv2.remap(
            image,
            self._map1,
            self._map2,
            cv2.INTER_LINEAR,
            dst=self.out,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(self.fill, self.fill, self.fill),
        )
