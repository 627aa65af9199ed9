"""Composited training images for the segmenter: a rendered sphere blended onto a background.

The paper's vision data: sphere images rendered under random lighting and viewpoints,
blended onto background photographs by the rendered mask. This module does the same
with its own small ray tracer (not the simulator's renderer, which plays the real
camera and is kept for evaluation only): a shaded glossy sphere of random size,
position, colour cast and lighting, a soft contact shadow, distractors in other
colours, then the sensor (defocus, exposure, white balance, noise, JPEG).

Images are uint8 RGB; masks follow the simulator's truth convention (``drivers/sim/mask.py``):
mask cell (i, j) covers image pixels 4i..4i+3 x 4j..4j+3 and is 1 where the sphere covers
at least half of it, and the cell under the sphere's centre is always 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from grasprt.clock import SimClock
from grasprt.drivers.sim.config import SceneConfig, SimConfig
from grasprt.drivers.sim.factory import make_sim
from grasprt.drivers.sim.ik import ik_residual, solve_ik
from grasprt.drivers.sim.scene import CLUTTER_RGB
from grasprt.export.defaults import sim_camera_fallback
from grasprt.export.reference.backgrounds import BackgroundSource

CELL = 4
MODEL_SIZE = 400
_TAN_HALF_FOV = float(np.tan(np.radians(40.0)))
FOCAL_PX = sim_camera_fallback().fx
TARGET_RGB = SceneConfig().sphere_rgb
# Sphere radius on the 400x400 image, px: ~4.7 at the start height (35 cm); ~7 at the
# grasp, where the Sawyer's wrist camera is still ~24 cm above the fingertips. Larger
# ones keep it working for a camera mounted nearer the fingers. Log-uniform.
RADIUS_RANGE_PX = (1.8, 40.0)


@dataclass(frozen=True)
class Light:
    """One lamp and the camera's response to it, in the camera's optical frame."""

    direction: np.ndarray  # unit vector from the surface toward the lamp
    ambient: float
    specular: float
    shininess: float
    tint: np.ndarray  # RGB colour of the light


def draw_light(rng: np.random.Generator) -> Light:
    # The lamp is above the table, so mostly behind a camera looking down (-z).
    d = np.array([rng.uniform(-1.2, 1.2), rng.uniform(-1.2, 1.2), -rng.uniform(0.2, 1.5)])
    warmth = rng.uniform(-0.12, 0.12)
    return Light(
        direction=d / np.linalg.norm(d),
        ambient=float(rng.uniform(0.15, 0.6)),
        specular=float(rng.uniform(0.0, 0.7)),
        shininess=float(rng.uniform(8.0, 80.0)),
        tint=np.array([1.0 + warmth, 1.0, 1.0 - warmth], np.float32),
    )


def target_colour(rng: np.random.Generator) -> np.ndarray:
    """The yellow of the target, varied as paint, plastic and a camera's colour response vary."""
    r, g, _b = TARGET_RGB
    return np.array(
        [r * rng.uniform(0.85, 1.07), g * rng.uniform(0.78, 1.1), rng.uniform(0.0, 0.25)],
        np.float32,
    )


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape[:2]
    return a.reshape(h // k, k, w // k, k, *a.shape[2:]).mean(axis=(1, 3))


def render_ball(
    shape: tuple[int, int],
    centre_px: tuple[float, float],
    radius_px: float,
    principal: tuple[float, float],
    rgb: np.ndarray,
    light: Light,
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """Ray-trace a sphere of image radius `radius_px` centred on pixel `centre_px`.

    Returns (box (u0, v0, u1, v1), colour premultiplied by coverage (h, w, 3) in 0..255,
    coverage (h, w)) over the sphere's box clipped to `shape`, or None when it is outside.
    """
    h, w = shape
    cu, cv = centre_px
    reach = radius_px * 1.1 + 2.0
    u0, v0 = max(int(np.floor(cu - reach)), 0), max(int(np.floor(cv - reach)), 0)
    u1, v1 = min(int(np.ceil(cu + reach)) + 1, w), min(int(np.ceil(cv + reach)) + 1, h)
    if u0 >= u1 or v0 >= v1:
        return None
    # A unit sphere far enough that its silhouette has the asked radius on the axis.
    depth = float(np.hypot(FOCAL_PX / radius_px, 1.0))
    c = np.array([(cu - principal[0]) / FOCAL_PX, (cv - principal[1]) / FOCAL_PX, 1.0]) * depth
    ss = 4 if radius_px < 10 else 2 if radius_px < 30 else 1
    offs = (np.arange(ss) + 0.5) / ss - 0.5
    us = (np.repeat(np.arange(u0, u1), ss) + np.tile(offs, u1 - u0) - principal[0]) / FOCAL_PX
    vs = (np.repeat(np.arange(v0, v1), ss) + np.tile(offs, v1 - v0) - principal[1]) / FOCAL_PX
    x, y = us[None, :].astype(np.float32), vs[:, None].astype(np.float32)
    a = x * x + y * y + 1.0
    b = x * c[0] + y * c[1] + c[2]
    disc = b * b - a * (float(c @ c) - 1.0)
    hit = disc >= 0.0
    if not hit.any():
        return None
    t = (b - np.sqrt(np.maximum(disc, 0.0))) / a
    nx, ny, nz = t * x - c[0], t * y - c[1], t - c[2]
    ld = light.direction
    n_l = nx * ld[0] + ny * ld[1] + nz * ld[2]
    inv = 1.0 / np.sqrt(a)
    vx, vy, vz = -x * inv, -y * inv, -inv  # toward the eye
    hx, hy, hz = ld[0] + vx, ld[1] + vy, ld[2] + vz
    n_h = (nx * hx + ny * hy + nz * hz) / np.sqrt(np.maximum(hx * hx + hy * hy + hz * hz, 1e-12))
    diffuse = np.where(hit, light.ambient + (1 - light.ambient) * np.maximum(n_l, 0.0), 0.0)
    gloss = np.where(hit, light.specular * np.maximum(n_h, 0.0) ** light.shininess, 0.0)
    cover = _block_mean(hit.astype(np.float32), ss)
    shade = _block_mean(diffuse.astype(np.float32), ss)[..., None]
    shine = _block_mean(gloss.astype(np.float32), ss)[..., None]
    colour = 255.0 * light.tint * (rgb * shade + shine)
    return (u0, v0, u1, v1), colour.astype(np.float32), cover


def _paste(
    img: np.ndarray, drawn: tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]
) -> None:
    (u0, v0, u1, v1), colour, cover = drawn
    patch = img[v0:v1, u0:u1]
    patch *= 1.0 - cover[..., None]
    patch += colour


def _shadow(
    img: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    light: Light,
    rng: np.random.Generator,
) -> None:
    """Darken a soft disc where the ball meets the table, pushed away from the lamp."""
    h, w = img.shape[:2]
    shift = -light.direction[:2] * radius * rng.uniform(0.2, 1.0)
    sx, sy = centre[0] + shift[0], centre[1] + shift[1]
    size = radius * rng.uniform(0.9, 1.4)
    soft = max(radius * rng.uniform(0.15, 0.6), 0.7)
    reach = size + 3 * soft
    u0, v0 = max(int(sx - reach), 0), max(int(sy - reach), 0)
    u1, v1 = min(int(sx + reach) + 2, w), min(int(sy + reach) + 2, h)
    if u0 >= u1 or v0 >= v1:
        return
    y, x = np.mgrid[v0:v1, u0:u1].astype(np.float32)
    rho = np.sqrt((x - sx) ** 2 + (y - sy) ** 2)
    occ = 1.0 / (1.0 + np.exp(np.clip((rho - size) / soft, -50, 50)))
    img[v0:v1, u0:u1] *= (1.0 - rng.uniform(0.2, 0.7) * occ)[..., None]


def _hue_not_yellow(rng: np.random.Generator) -> np.ndarray:
    """A random saturated colour whose hue keeps clear of the target's yellow (~51 deg)."""
    hue = rng.uniform(70.0, 380.0) % 360.0  # 20..70 degrees excluded
    hsv = np.uint8([[[hue / 2.0, rng.uniform(60, 255), rng.uniform(60, 255)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def _clutter(img: np.ndarray, rng: np.random.Generator, light: Light, principal: tuple) -> None:
    """Distractors: balls and discs in the simulator's clutter colours, other blobs, and flat
    shapes."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(1, 6))):
        if rng.random() < 0.15:
            _flat_shape(img, rng, light)
            continue
        if rng.random() < 0.75:
            rgb = np.asarray(CLUTTER_RGB[int(rng.integers(len(CLUTTER_RGB)))], np.float32)
            # Orange is the closest to yellow: give it extra weight as a hard negative.
            if rng.random() < 0.25:
                rgb = np.asarray(CLUTTER_RGB[0], np.float32)
        else:
            rgb = _hue_not_yellow(rng)
        rgb = rgb * rng.uniform(0.85, 1.1, 3).astype(np.float32)
        centre = (rng.uniform(-10, w + 10), rng.uniform(-10, h + 10))
        radius = float(np.exp(rng.uniform(np.log(2.0), np.log(90.0))))
        if rng.random() < 0.5:
            _shadow(img, centre, radius, light, rng)
            drawn = render_ball((h, w), centre, radius, principal, rgb, light)
            if drawn is not None:
                _paste(img, drawn)
        else:
            _disc(img, centre, radius, rgb, light, rng)


def _flat_shape(img: np.ndarray, rng: np.random.Generator, light: Light) -> None:
    """A flat rectangle (a box, tape, a sticky note), often yellow: it teaches that the
    target is a round, shaded blob and not any yellow patch."""
    h, w = img.shape[:2]
    rgb = target_colour(rng) if rng.random() < 0.5 else _hue_not_yellow(rng)
    long_side = float(np.exp(rng.uniform(np.log(14.0), np.log(160.0))))
    size = (long_side, long_side * rng.uniform(0.15, 1.0))
    centre = (rng.uniform(0, w), rng.uniform(0, h))
    corners = cv2.boxPoints((centre, size, rng.uniform(0.0, 180.0)))
    cover = np.zeros((h, w), np.float32)
    cv2.fillPoly(cover, [np.round(corners * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    level = light.ambient + (1 - light.ambient) * rng.uniform(0.5, 1.0)
    img *= 1.0 - cover[..., None]
    img += cover[..., None] * (255.0 * light.tint * rgb * level)


def _disc(
    img: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    rgb: np.ndarray,
    light: Light,
    rng: np.random.Generator,
) -> None:
    """A flat disc or ellipse (a cap, a sticker) lit evenly, with anti-aliased edges."""
    h, w = img.shape[:2]
    cover = np.zeros((h, w), np.float32)
    axes = (max(int(radius * 16), 1), max(int(radius * rng.uniform(0.5, 1.0) * 16), 1))
    at = (int(centre[0] * 16), int(centre[1] * 16))
    cv2.ellipse(cover, at, axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
    level = light.ambient + (1 - light.ambient) * rng.uniform(0.5, 1.0)
    colour = 255.0 * light.tint * rgb * level
    img *= 1.0 - cover[..., None]
    img += cover[..., None] * colour


def _sensor(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Defocus, exposure, white balance, noise, sometimes JPEG: float 0..255 -> uint8."""
    if rng.random() < 0.7:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.4))
    img = img * (rng.uniform(0.65, 1.3) * rng.uniform(0.9, 1.1, 3)).astype(np.float32)
    noise_std = rng.uniform(0.0, 6.0)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_std)
    out = np.clip(img, 0.0, 255.0).round().astype(np.uint8)
    if rng.random() < 0.2:
        quality = int(rng.integers(60, 96))
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out


def _fingers(
    img: np.ndarray,
    rng: np.random.Generator,
    light: Light,
    near: tuple[float, float, float] | None,
) -> np.ndarray:
    """The gripper's fingers in front of the scene: one or two dark blocks, drawn over
    the image; returns their coverage, which hides the target wherever it lies.

    The wrist camera looks past the fingers at what they close on (docs/mujoco.md), so
    near the grasp the target sits at a finger's edge or partly behind it. `near`
    (u, v, radius) puts the blocks against the target, else they fall anywhere."""
    h, w = img.shape[:2]
    occ = np.zeros((h, w), np.float32)
    scale = near[2] if near is not None else float(np.exp(rng.uniform(np.log(3.0), np.log(20.0))))
    for _ in range(int(rng.integers(1, 3))):
        size = (scale * rng.uniform(1.5, 8.0), scale * rng.uniform(0.8, 4.0))
        if near is not None:
            side = rng.uniform(0.0, 2 * np.pi)
            reach = scale * rng.uniform(0.3, 1.0) + 0.5 * min(size) * rng.uniform(0.5, 1.2)
            centre = (near[0] + reach * np.cos(side), near[1] + reach * np.sin(side))
        else:
            centre = (rng.uniform(0, w), rng.uniform(0, h))
        corners = cv2.boxPoints((centre, size, rng.uniform(0.0, 180.0)))
        cv2.fillPoly(occ, [np.round(corners * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    if not occ.any():
        return occ
    # Black plastic: a few percent of the light, a little shading across the block.
    level = rng.uniform(0.02, 0.2) * (light.ambient + (1 - light.ambient) * rng.uniform(0.3, 1.0))
    ramp = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0), w, dtype=np.float32)
    colour = 255.0 * light.tint * level * ramp[None, :, None]
    img *= 1.0 - occ[..., None]
    img += occ[..., None] * colour
    return occ


def cell_mask(
    cover: np.ndarray, centre_px: tuple[float, float] | None, hidden: np.ndarray | None = None
) -> np.ndarray:
    """The 4x-smaller truth mask of a coverage image, by the simulator's rule (the cell
    under the centre is 1 unless `hidden` covers the centre, as a finger in front does)."""
    h, w = cover.shape
    mask = (_block_mean(cover, CELL) >= 0.5).astype(np.float32)
    if centre_px is not None and hidden is not None:
        iu, iv = int(np.floor(centre_px[0] + 0.5)), int(np.floor(centre_px[1] + 0.5))
        if 0 <= iu < w and 0 <= iv < h and hidden[iv, iu] >= 0.5:
            centre_px = None
    if centre_px is not None:
        iu, iv = int(np.floor(centre_px[0] + 0.5)), int(np.floor(centre_px[1] + 0.5))
        if 0 <= iu < w and 0 <= iv < h:
            mask[iv // CELL, iu // CELL] = 1.0
    return mask


@dataclass(frozen=True)
class CompositeSettings:
    p_target: float = 0.85  # chance the image holds the target at all
    p_clutter: float = 0.5
    p_shadow: float = 0.6
    radius_px: tuple[float, float] = RADIUS_RANGE_PX
    # The gripper's fingers in view (`_fingers`): the kinematic recipe draws none (its
    # simulator's camera shows no hand); the MuJoCo stage's fine-tune draws them.
    p_fingers: float = 0.0
    p_fingers_at_target: float = 0.8


def composite(
    rng: np.random.Generator,
    source: BackgroundSource,
    height: int,
    width: int,
    principal: tuple[float, float] | None = None,
    settings: CompositeSettings = CompositeSettings(),
) -> tuple[np.ndarray, np.ndarray, str]:
    """One composite: (uint8 RGB (h, w, 3), float32 mask (h/4, w/4), background family).

    `principal` is the optical axis in this image's pixels; a crop of the 400x400 frame
    passes where the frame's axis falls in the crop, so perspective matches the full view.
    """
    if height % CELL or width % CELL:
        raise ValueError(f"image size {width}x{height} must be a multiple of {CELL}")
    if principal is None:
        principal = ((width - 1) / 2.0, (height - 1) / 2.0)
    family, img = source.sample(rng, height, width)
    light = draw_light(rng)
    if rng.random() < settings.p_clutter:
        _clutter(img, rng, light, principal)
    cover = np.zeros((height, width), np.float32)
    centre = None
    if rng.random() < settings.p_target:
        lo, hi = settings.radius_px
        radius = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        # Big spheres may hang off the edge (the last centimetres of an approach).
        margin = min(radius * 0.6, 0.2 * min(height, width))
        centre = (
            rng.uniform(-margin, width - 1 + margin),
            rng.uniform(-margin, height - 1 + margin),
        )
        if rng.random() < settings.p_shadow:
            _shadow(img, centre, radius, light, rng)
        drawn = render_ball((height, width), centre, radius, principal, target_colour(rng), light)
        if drawn is not None:
            _paste(img, drawn)
            (u0, v0, u1, v1), _colour, cov = drawn
            cover[v0:v1, u0:u1] = cov
    hidden = None
    # Drawn only when asked: the recipe's own stream of random numbers stays as it was.
    if settings.p_fingers > 0 and rng.random() < settings.p_fingers:
        at = centre is not None and rng.random() < settings.p_fingers_at_target
        near = (centre[0], centre[1], radius) if at and centre is not None else None
        hidden = _fingers(img, rng, light, near)
        cover *= 1.0 - hidden
    return _sensor(img, rng), cell_mask(cover, centre, hidden), family


def crop_batch(
    rng: np.random.Generator,
    source: BackgroundSource,
    n: int,
    size: int,
    frame: int = 400,
    settings: CompositeSettings = CompositeSettings(),
) -> tuple[np.ndarray, np.ndarray]:
    """`n` square crops of side `size` as if cut from `frame`-sized images at cell-aligned
    offsets: (uint8 [n, size, size, 3], float32 [n, 1, size/4, size/4])."""
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, 1, size // CELL, size // CELL), np.float32)
    axis = (frame - 1) / 2.0
    for i in range(n):
        u0 = CELL * int(rng.integers(0, (frame - size) // CELL + 1))
        v0 = CELL * int(rng.integers(0, (frame - size) // CELL + 1))
        img, mask, _family = composite(
            rng, source, size, size, (axis - u0, axis - v0), settings=settings
        )
        images[i], masks[i, 0] = img, mask
    return images, masks


def sim_frames(
    n: int, seed: int, clutter: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """`n` held-out frames (image, truth mask, camera-to-sphere distance in m) from the simulator.

    Its renderer plays the real camera, so these frames are only ever scored, never
    trained on. Half the poses are free views from 20 to 42 cm above the table, offset
    and tilted; half are the last part of an approach, fingertips 0.5 to 10 cm above the
    sphere (the closest the wrist camera gets to it).
    """
    world, _robot, camera = make_sim(SimConfig(clutter=clutter), SimClock(), seed)
    rng = np.random.default_rng([seed, clutter, 0x5E6])
    table_z = world.table_z
    made, episode = 0, 0
    while made < n:
        episode += 1
        world.reset(seed * 100_003 + clutter * 1009 + episode)
        sphere = world.sphere_position()
        forward = np.array([*rng.uniform(-0.25, 0.25, 2), -1.0])
        if rng.random() < 0.5:
            frame_name = "fingertips"
            lift = float(np.exp(rng.uniform(np.log(0.005), np.log(0.10))))
            target = sphere + np.array([*rng.uniform(-0.015, 0.015, 2), lift])
            forward[:2] *= 0.3
        else:
            frame_name = "camera"
            height = rng.uniform(0.20, 0.42)
            reach = 0.7 * height * _TAN_HALF_FOV
            target = np.array([*(sphere[:2] + rng.uniform(-reach, reach, 2)), table_z + height])
        q = solve_ik(world.kin, world.true_q(), target, forward, frame=frame_name)
        pos_err, _ = ik_residual(world.kin, q, target, forward, frame=frame_name)
        if pos_err > 0.005 or world.kin.lowest_point_z(q) < table_z + 0.002:
            continue  # unreachable, or the hand in the table: not a view the robot has
        world.arm.reset(q)
        frame = camera.capture()
        if frame.truth_mask is None or frame.truth_mask.sum() == 0:
            continue  # the sphere is out of view: these figures are about finding it
        made += 1
        distance = float(np.linalg.norm(world.camera_pose()[:3, 3] - sphere))
        yield frame.image, frame.truth_mask, distance


def composite_frames(
    n: int, seed: int, source: BackgroundSource
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """`n` full 400x400 composites over `source`: (image, mask, background family)."""
    rng = np.random.default_rng([seed, 0xC0A])
    for _ in range(n):
        yield composite(rng, source, MODEL_SIZE, MODEL_SIZE)
