"""The ground-truth target mask, aligned with the bundle's model input.

Mask pixel (i, j) covers model-image pixels 4i..4i+3 (rows) and 4j..4j+3 (columns).
It is 1 where the sphere covers at least half of it (8 x 8 ray samples per mask
pixel), and the mask pixel under the sphere's projected centre is always 1, so a far
sphere smaller than one mask pixel never vanishes, unless something hides it.

What hides it is what the camera sees in front of it: the hand's parts (MuJoCo's
fingers) nearer the camera than the sphere's centre, the renderer's own painter's rule
for drawing them over the sphere. Clutter never hides it (the renderer draws balls far
to near and flat clutter on the table).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from grasprt.drivers.sim.optics import View, block_mean, ray_box_hits, sphere_hits
from grasprt.drivers.sim.scene import Box

CELL = 4  # model pixels per mask pixel, each way
_SS = 2  # ray samples per model pixel, each way


def truth_mask(
    view: View, centre: np.ndarray, radius: float, hand_parts: Sequence[Box] = ()
) -> np.ndarray:
    """(height/4) x (width/4) float32 in {0, 1} for a sphere seen by the model camera
    `view`, where none of `hand_parts` in front of it hides it."""
    mh, mw = view.height // CELL, view.width // CELL
    mask = np.zeros((mh, mw), np.float32)
    c = view.to_camera(centre)
    if c[2] <= radius:
        return mask
    box = view.box_around(c, radius)
    if box is not None:
        u0, v0, u1, v1 = box
        mu0, mv0 = u0 // CELL, v0 // CELL
        mu1, mv1 = min(-(-u1 // CELL), mw), min(-(-v1 // CELL), mh)
        if mu0 < mu1 and mv0 < mv1:
            x, y = view.sample_rays((mu0 * CELL, mv0 * CELL, mu1 * CELL, mv1 * CELL), _SS)
            hit = sphere_hits(x, y, c, radius)
            for part in _in_front(view, centre, hand_parts):
                if _overlaps(_silhouette(view, part), box):
                    hit &= ~_part_hits(view, part, x, y)
            cover = block_mean(hit.astype(np.float32), CELL * _SS)
            mask[mv0:mv1, mu0:mu1] = cover >= 0.5
    u, v = view.project(c[None])[0]
    iu, iv = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
    inside = 0 <= iu < mw * CELL and 0 <= iv < mh * CELL
    if inside and not _hidden_centre(view, c, centre, hand_parts):
        mask[iv // CELL, iu // CELL] = 1.0
    return mask


def _in_front(view: View, centre: np.ndarray, parts: Sequence[Box]) -> list[Box]:
    far = float(np.linalg.norm(centre - view.pos))
    return [p for p in parts if float(np.linalg.norm(p.centre - view.pos)) <= far]


def _hidden_centre(
    view: View, c: np.ndarray, centre: np.ndarray, parts: Sequence[Box]
) -> bool:
    """Whether a part in front covers the ray to the sphere's centre."""
    x, y = np.array([[c[0] / c[2]]]), np.array([[c[1] / c[2]]])
    return any(bool(_part_hits(view, p, x, y)[0, 0]) for p in _in_front(view, centre, parts))


def _part_hits(view: View, part: Box, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ray_box_hits(x, y, view.to_camera(part.centre), view.rot.T @ part.rot, part.half)


_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)


def _silhouette(view: View, part: Box) -> np.ndarray | None:
    """The box's corners in pixel coordinates (8 x 2); None if it reaches behind the
    camera (the renderer leaves such a box out)."""
    cam = view.to_camera(part.centre + (_SIGNS * part.half) @ part.rot.T)
    return None if np.any(cam[:, 2] <= 0.01) else view.project(cam)


def _overlaps(uv: np.ndarray | None, box: tuple[int, int, int, int]) -> bool:
    """Whether a silhouette's bounding box meets a pixel box (u0, v0, u1, v1): the
    ray-box tests only for parts that can cover the sphere's rays."""
    if uv is None:
        return False
    u0, v0, u1, v1 = box
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    return bool(lo[0] < u1 and hi[0] > u0 - 1 and lo[1] < v1 and hi[1] > v0 - 1)


def hand_mask(view: View, parts: Sequence[Box]) -> np.ndarray:
    """(height/4) x (width/4) bool: the mask cells the hand's parts cover in `view` (each
    box's silhouette, the hull of its corners; a box reaching behind the camera is left
    out, as the renderer leaves it)."""
    mh, mw = view.height // CELL, view.width // CELL
    out = np.zeros((mh, mw), np.uint8)
    for part in parts:
        px = _silhouette(view, part)
        if px is None:
            continue
        # Mask cell (i, j) is centred on model pixel 4j + 1.5: scale pixel coordinates
        # to cells, with 4 bits of subpixel for fillConvexPoly.
        uv = (px + 0.5) / CELL - 0.5
        hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)
