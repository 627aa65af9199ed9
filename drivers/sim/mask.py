"""The ground-truth target mask, aligned with the bundle's model input.

Mask pixel (i, j) covers model-image pixels 4i..4i+3 (rows) and 4j..4j+3 (columns).
It is 1 where the sphere covers at least half of it (8 x 8 ray samples per mask
pixel), and the mask pixel under the sphere's projected centre is always 1, so a far
sphere smaller than one mask pixel never vanishes. Other objects do not hide it.
"""

from __future__ import annotations

import numpy as np

from grasprt.drivers.sim.optics import View, block_mean, sphere_hits

CELL = 4  # model pixels per mask pixel, each way
_SS = 2  # ray samples per model pixel, each way


def truth_mask(view: View, centre: np.ndarray, radius: float) -> np.ndarray:
    """(height/4) x (width/4) float32 in {0, 1} for a sphere seen by the model camera `view`."""
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
            cover = block_mean(hit.astype(np.float32), CELL * _SS)
            mask[mv0:mv1, mu0:mu1] = cover >= 0.5
    u, v = view.project(c[None])[0]
    iu, iv = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
    if 0 <= iu < mw * CELL and 0 <= iv < mh * CELL:
        mask[iv // CELL, iu // CELL] = 1.0
    return mask
