"""Procedural table-top textures: wood grain and laminates, made once per process.

Each texture is a square image of the table covering ``EXTENT_M`` metres at
``RESOLUTION_M`` per pixel, plus a half-resolution copy for far views (less aliasing).
They come from fixed seeds, so every process and every run sees the same tables; an
episode varies a texture by rotating, shifting and lighting it, not by regenerating it.
"""

from __future__ import annotations

from functools import lru_cache

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
    grid = rng.uniform(-1.0, 1.0, (size, along)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR)


def _wood(seed: int, light: tuple, dark: tuple, ring_freq: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = SIZE_PX
    y = np.linspace(0.0, 1.0, s, dtype=np.float32)[:, None]
    warp = _fractal_noise(rng, s, 4, 3)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (ring_freq * y + 1.8 * warp))
    rings = rings**3  # narrow dark latewood bands, wide light earlywood
    fibres = _streaks(rng, s, 24)
    t = np.clip(0.75 * rings + 0.15 * fibres + 0.1 * _fractal_noise(rng, s, 3, 16), 0.0, 1.0)
    lo, hi = np.array(dark, np.float32), np.array(light, np.float32)
    return hi + (lo - hi) * t[..., None]


def _laminate(seed: int, colour: tuple, speckle: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = SIZE_PX
    base = np.array(colour, np.float32)
    shade = 1.0 + 0.05 * _fractal_noise(rng, s, 4, 4)
    dots = rng.uniform(-1.0, 1.0, (s, s)).astype(np.float32)
    dots = cv2.GaussianBlur(dots, (0, 0), 0.8) * speckle
    return base * (shade + dots)[..., None]


_MAKERS = (
    lambda: _wood(11, (0.78, 0.60, 0.40), (0.55, 0.36, 0.20), 20.0),  # light oak
    lambda: _wood(12, (0.50, 0.31, 0.18), (0.30, 0.17, 0.09), 32.0),  # walnut
    lambda: _laminate(13, (0.55, 0.56, 0.56), 0.25),  # grey lab bench
    lambda: _laminate(14, (0.80, 0.78, 0.72), 0.08),  # pale melamine
)


@lru_cache(maxsize=None)
def table_texture(index: int) -> tuple[np.ndarray, np.ndarray]:
    """(full, half-resolution) uint8 RGB images of texture `index` (0-based)."""
    rgb = np.clip(_MAKERS[index % len(_MAKERS)]() * 255.0, 0, 255).astype(np.uint8)
    return rgb, cv2.pyrDown(rgb)
