"""Background images for the segmenter's composites, grouped into families.

The paper blended rendered spheres onto 1600 real photographs. Here a family is one
source of backgrounds: procedural surfaces (wood, fractal noise, stripes, gradients,
checkerboards), the simulator's table textures seen at random scales and angles, and
permissively licensed photographs shipped with scikit-image. Whole families are held
out of training so one figure can say how the segmenter does on surfaces it never saw.

Every sampler returns float32 RGB in 0..255, ``(h, w, 3)``; lighting, clutter and the
sensor are applied later, to every family alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np

from grasprt.drivers.sim import texture

Sampler = Callable[[np.random.Generator, int, int], np.ndarray]

# Photographs in scikit-image's bundled data, with the licence its docstrings give.
PHOTO_LICENCES: dict[str, str] = {
    "astronaut": "public domain (NASA), via scikit-image",
    "chelsea": "CC0 (Stefan van der Walt), via scikit-image",
    "rocket": "public domain (SpaceX), via scikit-image",
    "brick": "CC0 (cc0textures.com Bricks25), via scikit-image",
    "grass": "CC0 (cc0textures.com), via scikit-image",
    "coins": "no known copyright restrictions, via scikit-image",
    "text": "public domain, via scikit-image",
    "immunohistochemistry": "no known copyright restrictions, via scikit-image",
    "coffee": "CC0 (Rachel Michetti), via scikit-image",
    "camera": "CC0 (Lav Varshney), via scikit-image",
    "gravel": "CC0 (cc0textures.com Gravel04), via scikit-image",
    "retina": "CC0 1.0 (Häggström), via scikit-image",
}
PHOTOS_TRAIN = ("astronaut", "chelsea", "rocket", "brick", "grass", "coins", "text")
PHOTOS_HELD_OUT = ("immunohistochemistry", "coffee", "camera", "gravel", "retina")

TRAIN_FAMILIES = ("sim_table", "wood", "noise", "stripes", "gradient", "photo")
HELD_OUT_FAMILIES = ("checker", "photo_held_out")


def _random_rgb(rng: np.random.Generator, lo: float = 20.0, hi: float = 235.0) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def _blend(field: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel mix of colours a (field 0) and b (field 1)."""
    f = np.clip(field, 0.0, 1.0)[..., None]
    return (a + (b - a) * f).astype(np.float32)


def fractal_noise(rng: np.random.Generator, h: int, w: int, octaves: int, base: int) -> np.ndarray:
    """Smooth noise in 0..1: random grids of rising resolution, upsampled and summed."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        cells = base * 2**k
        grid = rng.random((cells, cells), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    return out / total


def _coords(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Pixel coordinates projected on a random direction (for stripes and gradients)."""
    angle = rng.uniform(0.0, np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x * np.float32(np.cos(angle)) + y * np.float32(np.sin(angle))


def wood(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    along = _coords(rng, h, w)
    warp = fractal_noise(rng, h, w, 3, int(rng.integers(2, 5)))
    period = rng.uniform(6.0, 60.0)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (along / period + 3.0 * warp))
    grain = rings**3 * 0.8 + 0.2 * fractal_noise(rng, h, w, 2, 24)
    light = np.array([rng.uniform(150, 230), rng.uniform(100, 170), rng.uniform(50, 120)])
    dark = light * rng.uniform(0.45, 0.8)
    return _blend(grain, light.astype(np.float32), dark.astype(np.float32))


def noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    field = fractal_noise(rng, h, w, int(rng.integers(2, 6)), int(rng.integers(2, 16)))
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    return _blend(field, _random_rgb(rng), _random_rgb(rng))


def stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    phase = _coords(rng, h, w) / rng.uniform(4.0, 50.0)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * phase)
    if rng.random() < 0.5:
        wave = (wave > 0.5).astype(np.float32)
    return _blend(wave, _random_rgb(rng), _random_rgb(rng))


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ramp = _coords(rng, h, w)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    flat = _blend(ramp, _random_rgb(rng), _random_rgb(rng))
    return flat if rng.random() < 0.7 else np.full_like(flat, _random_rgb(rng))


def checker(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    square = rng.uniform(5.0, 60.0)
    angle = rng.uniform(0.0, np.pi / 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    cells = np.floor((x * c + y * s) / square) + np.floor((y * c - x * s) / square)
    return _blend((cells % 2).astype(np.float32), _random_rgb(rng), _random_rgb(rng))


def _view_of(rng: np.random.Generator, image: np.ndarray, h: int, w: int) -> np.ndarray:
    """A random window of `image`, scaled, rotated and maybe mirrored, as float32 (h, w, 3)."""
    src_h, src_w = image.shape[:2]
    scale = rng.uniform(0.5, 2.5)  # output pixels per source pixel
    angle = rng.uniform(-180.0, 180.0)
    centre = (rng.uniform(0, src_w), rng.uniform(0, src_h))
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    m[:, 2] += (w / 2 - centre[0], h / 2 - centre[1])
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


@cache
def _photo(name: str) -> np.ndarray:
    import skimage.data  # only the training recipe needs scikit-image

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3], dtype=np.uint8)


def _photos(names: Sequence[str]) -> Sampler:
    def sample(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        return _view_of(rng, _photo(names[int(rng.integers(len(names)))]), h, w)

    return sample


def sim_table(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    full, _half = texture.table_texture(int(rng.integers(texture.COUNT)))
    return _view_of(rng, full, h, w)


SAMPLERS: dict[str, Sampler] = {
    "sim_table": sim_table,
    "wood": wood,
    "noise": noise,
    "stripes": stripes,
    "gradient": gradient,
    "checker": checker,
    "photo": _photos(PHOTOS_TRAIN),
    "photo_held_out": _photos(PHOTOS_HELD_OUT),
}


def lighting(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth multiplicative light field (falloff from a lamp, vignetting), about 0.5..1.2."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(-0.5, 1.5) * w, rng.uniform(-0.5, 1.5) * h
    spread = rng.uniform(0.6, 3.0) * max(h, w)
    falloff = 1.0 / (1.0 + ((x - cx) ** 2 + (y - cy) ** 2) / np.float32(spread**2))
    lo = rng.uniform(0.5, 0.9)
    return (lo + (1.2 - lo) * falloff).astype(np.float32)


@dataclass(frozen=True)
class BackgroundSource:
    """Draws backgrounds from some families, each family equally likely."""

    families: tuple[str, ...]
    weights: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in SAMPLERS]
        if unknown or not self.families:
            raise ValueError(f"unknown background families {unknown}; known: {list(SAMPLERS)}")

    def sample(self, rng: np.random.Generator, h: int, w: int) -> tuple[str, np.ndarray]:
        """(family, float32 RGB 0..255 of shape (h, w, 3)), lit unevenly."""
        p = np.asarray(self.weights or [1.0] * len(self.families), np.float64)
        family = self.families[int(rng.choice(len(self.families), p=p / p.sum()))]
        img = SAMPLERS[family](rng, h, w)
        return family, img * lighting(rng, h, w)[..., None]


def licences(families: Sequence[str]) -> dict[str, str]:
    """Where the photographs among `families` come from, and under which terms."""
    names: list[str] = []
    if "photo" in families:
        names += PHOTOS_TRAIN
    if "photo_held_out" in families:
        names += PHOTOS_HELD_OUT
    return {n: PHOTO_LICENCES[n] for n in names}
