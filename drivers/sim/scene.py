"""What the renderer needs to draw one frame: objects, lighting, and the camera's pose.

The world hands the camera a :class:`SceneSnapshot` taken under its lock; the camera
renders it without the lock, so a slow render never holds up the control loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grasprt.drivers.sim.board import BoardPrint
from grasprt.drivers.sim.texture import COUNT as TABLE_TEXTURES

# Distractor colours (linear RGB, 0..1): none of them is the target's yellow.
CLUTTER_RGB: tuple[tuple[float, float, float], ...] = (
    (0.95, 0.45, 0.05),  # orange
    (0.80, 0.08, 0.06),  # red
    (0.10, 0.55, 0.15),  # green
    (0.90, 0.90, 0.88),  # white
    (0.10, 0.25, 0.75),  # blue
    (0.15, 0.15, 0.15),  # black
)


@dataclass(frozen=True)
class Ball:
    centre: np.ndarray  # 3, base frame
    radius: float
    rgb: tuple[float, float, float]
    specular: float = 0.35  # a glossy plastic ball; 0 = matte


@dataclass(frozen=True)
class Disc:
    """A flat round object lying on the table (a coin, a bottle cap, a sticker)."""

    centre: np.ndarray  # 3, centre of the top face, base frame
    radius: float
    rgb: tuple[float, float, float]


@dataclass(frozen=True)
class Box:
    """A part of the hand in the camera's view (a finger), drawn in front of the scene."""

    centre: np.ndarray  # 3, base frame
    rot: np.ndarray  # 3x3, the box's axes in the base frame (columns)
    half: np.ndarray  # 3, half extents along those axes
    rgb: tuple[float, float, float]


@dataclass(frozen=True)
class Look:
    """The appearance of one episode: drawn at reset, fixed until the next."""

    texture: int  # which procedural table texture
    texture_angle: float  # rotation of the texture on the table, rad
    texture_offset: tuple[float, float]  # shift of the texture on the table, m
    light_pos: tuple[float, float, float]  # a point light above the table, base frame
    ambient: float  # fraction of light that is ambient
    light_rgb: tuple[float, float, float]  # colour temperature of the light
    exposure: float  # overall gain of the camera
    blur_sigma: float  # defocus of this episode, pixels
    noise_seed: int  # seeds the per-frame sensor noise of this episode


@dataclass(frozen=True)
class SceneSnapshot:
    t: float  # world time of the snapshot
    episode: int  # changes on every reset, so cameras know when the look changed
    camera_pose: np.ndarray  # 4x4 optical frame in the base frame (z forward, x right, y down)
    table_z: float
    target: Ball
    clutter: tuple[Ball | Disc, ...]
    look: Look
    board: BoardPrint | None = None  # a calibration board on the table
    # Parts of the hand the camera sees (MuJoCo's fingers); the kinematic sim has none.
    hand_parts: tuple[Box, ...] = ()


def draw_look(rng: np.random.Generator, max_blur_sigma: float) -> Look:
    """A random but plausible lab: table, light above and in front, colour, focus."""
    warmth = rng.uniform(-0.08, 0.08)
    return Look(
        texture=int(rng.integers(TABLE_TEXTURES)),
        texture_angle=float(rng.uniform(-np.pi, np.pi)),
        texture_offset=(float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.2, 0.2))),
        light_pos=(
            float(rng.uniform(0.2, 1.0)),
            float(rng.uniform(-0.6, 0.6)),
            float(rng.uniform(0.9, 1.8)),
        ),
        ambient=float(rng.uniform(0.25, 0.5)),
        light_rgb=(1.0 + warmth, 1.0, 1.0 - warmth),
        exposure=float(rng.uniform(0.8, 1.15)),
        blur_sigma=float(rng.uniform(0.0, max_blur_sigma)),
        noise_seed=int(rng.integers(2**31)),
    )
