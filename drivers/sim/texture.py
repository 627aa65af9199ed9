"""Procedural table-top textures: wood grain and laminates, made once per process.

Each texture is a square image of the table covering ``EXTENT_M`` metres at
``RESOLUTION_M`` per pixel, plus a half-resolution copy for far views (less aliasing).
They come from fixed seeds, so every process and every run sees the same tables; an
episode varies a texture by rotating, shifting and lighting it, not by regenerating it.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

RESOLUTION_M = 0.001
SIZE_PX = 1600
EXTENT_M = SIZE_PX * RESOLUTION_M


def _fractal_noise(rng: np.random.Generator, size: int, octaves: int, base: int) -> np.ndarray:
    """Smooth noise in about [-1, 1]: random grids of rising resolution, upsampled and summed."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        cells = base * 2**k
        grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
        out += amp * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    return out / total


def _streaks(rng: np.random.Generator, size: int, along: int) -> np.ndarray:
    """Fine fibres: noise stretched along the x axis (the grain direction)."""
    grid = rng.random((size, along), dtype=np.float32) * 2.0 - 1.0
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR)


def _coloured(field: np.ndarray, lo: float, hi: float, at_lo: tuple, at_hi: tuple) -> np.ndarray:
    """Map a scalar field over [lo, hi] to RGB between two colours, via an 8-bit table."""
    index = cv2.convertScaleAbs(field, alpha=255.0 / (hi - lo), beta=-255.0 * lo / (hi - lo))
    ramp = np.linspace(0.0, 1.0, 256)[:, None]
    a, b = np.asarray(at_lo), np.asarray(at_hi)
    table = np.clip((a + (b - a) * ramp) * 255.0, 0, 255).astype(np.uint8)
    return cv2.LUT(cv2.merge([index, index, index]), table.reshape(256, 1, 3))


def _wood(seed: int, light: tuple, dark: tuple, ring_freq: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = SIZE_PX
    y = np.linspace(0.0, 1.0, s, dtype=np.float32)[:, None]
    warp = _fractal_noise(rng, s, 4, 3)
    rings = 0.5 + 0.5 * np.sin(np.float32(2 * np.pi) * (np.float32(ring_freq) * y + warp))
    rings = rings * rings * rings  # narrow dark latewood bands, wide light earlywood
    grain = 0.75 * rings + 0.15 * _streaks(rng, s, 24) + 0.1 * _fractal_noise(rng, s, 3, 16)
    return _coloured(grain, 0.0, 1.0, light, dark)


def _laminate(seed: int, colour: tuple, speckle: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = SIZE_PX
    shade = 1.0 + 0.05 * _fractal_noise(rng, s, 4, 4)
    dots = rng.random((s, s), dtype=np.float32) * 2.0 - 1.0
    shade += cv2.GaussianBlur(dots, (0, 0), 0.8) * speckle
    dim = tuple(0.6 * c for c in colour)
    bright = tuple(1.4 * c for c in colour)
    return _coloured(shade, 0.6, 1.4, dim, bright)


_MAKERS = (
    lambda: _wood(11, (0.78, 0.60, 0.40), (0.55, 0.36, 0.20), 20.0),  # light oak
    lambda: _wood(12, (0.50, 0.31, 0.18), (0.30, 0.17, 0.09), 32.0),  # walnut
    lambda: _laminate(13, (0.55, 0.56, 0.56), 0.25),  # grey lab bench
    lambda: _laminate(14, (0.80, 0.78, 0.72), 0.08),  # pale melamine
)
COUNT = len(_MAKERS)


@cache
def table_texture(index: int) -> tuple[np.ndarray, np.ndarray]:
    """(full, half-resolution) uint8 RGB images of texture `index` (0-based)."""
    rgb = _MAKERS[index % COUNT]()
    return rgb, cv2.pyrDown(rgb)


def preload() -> None:
    """Make every texture now (about a second), not in the middle of a timed loop."""
    for index in range(COUNT):
        table_texture(index)
