"""Render calibration boards through a known camera, distortion included.

Each camera pixel is traced back to the board: undistort its (supersampled) position to
a ray, intersect the ray with the board's plane, and sample the board's texture there.
That is the camera model run exactly, so the corners land where ``cv2.projectPoints``
says they should and a calibration can be checked against the camera that made them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from grasprt.calibration.boards import CharucoBoard, ChessBoard
from grasprt.types import Intrinsics

# A camera with the barrel distortion of a cheap wide lens; fx != fy on purpose.
TRUE_CAMERA = Intrinsics(
    width=640,
    height=480,
    fx=520.0,
    fy=523.5,
    cx=327.3,
    cy=236.1,
    dist=(-0.28, 0.09, 0.0008, -0.0006, -0.012),
)

BACKGROUND = 96  # mid grey, so that board edges stay well defined


@dataclass(frozen=True)
class Texture:
    image: np.ndarray  # grey, uint8
    ppm: float  # texture pixels per metre
    origin: tuple[float, float]  # where board (0, 0) lies in the texture, metres from its edge
    size: tuple[float, float]  # board extent in metres, for posing


def chessboard_texture(board: ChessBoard, ppm: float = 3000.0) -> Texture:
    """White margin of one square, then (cols+1) x (rows+1) squares, black at the corner."""
    s = board.square
    nx, ny = board.cols + 1, board.rows + 1
    sq = round(s * ppm)
    img = np.full(((ny + 2) * sq, (nx + 2) * sq), 255, np.uint8)
    for j in range(ny):
        for i in range(nx):
            if (i + j) % 2 == 0:
                img[(j + 1) * sq : (j + 2) * sq, (i + 1) * sq : (i + 2) * sq] = 0
    return Texture(img, sq / s, (2 * s, 2 * s), ((nx + 2) * s, (ny + 2) * s))


def charuco_texture(board: CharucoBoard, ppm: float = 3000.0) -> Texture:
    s = board.square
    w, h = round(board.squares_x * s * ppm), round(board.squares_y * s * ppm)
    inner = board.board.generateImage((w, h), marginSize=0, borderBits=1)
    m = round(0.5 * s * ppm)  # white quiet zone around the board
    img = cv2.copyMakeBorder(inner, m, m, m, m, cv2.BORDER_CONSTANT, value=255)
    ppm_x = w / (board.squares_x * s)
    return Texture(img, ppm_x, (m / ppm_x, m / ppm_x), (img.shape[1] / ppm_x, img.shape[0] / ppm_x))


def bent(texture: Texture, amplitude: float) -> Texture:
    """The same sheet, buckled: corners shifted up to ``amplitude`` metres in its plane."""
    h, w = texture.image.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shift = amplitude * texture.ppm * np.sin(2 * np.pi * yy / (0.6 * h))
    warped = cv2.remap(texture.image, xx + shift, yy, cv2.INTER_LINEAR, borderValue=255)
    return Texture(warped, texture.ppm, texture.origin, texture.size)


@functools.lru_cache(maxsize=4)
def _rays(camera: Intrinsics, supersample: int) -> np.ndarray:
    """Undistorted normalized coordinates of every supersampled pixel (H*S x W*S x 2)."""
    s = supersample
    u = (np.arange(camera.width * s) + 0.5) / s - 0.5
    v = (np.arange(camera.height * s) + 0.5) / s - 0.5
    uu, vv = np.meshgrid(u, v)
    pts = np.stack([uu, vv], axis=-1).reshape(-1, 1, 2).astype(np.float64)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-14)
    und = cv2.undistortPoints(pts, camera.matrix(), np.array(camera.dist), criteria=criteria)
    return und.reshape(camera.height * s, camera.width * s, 2)


def render(
    camera: Intrinsics,
    texture: Texture,
    rvec: np.ndarray,
    tvec: np.ndarray,
    *,
    rng: np.random.Generator,
    noise: float = 2.0,
    blur: float = 0.6,
    supersample: int = 2,
) -> np.ndarray:
    """The grey image ``camera`` takes of the board at pose (rvec, tvec)."""
    rays = _rays(camera, supersample)
    r, _ = cv2.Rodrigues(np.asarray(rvec, np.float64))
    h = np.column_stack([r[:, 0], r[:, 1], np.asarray(tvec, np.float64).reshape(3)])
    hinv = np.linalg.inv(h)
    x, y = rays[..., 0], rays[..., 1]
    bx = hinv[0, 0] * x + hinv[0, 1] * y + hinv[0, 2]
    by = hinv[1, 0] * x + hinv[1, 1] * y + hinv[1, 2]
    bw = hinv[2, 0] * x + hinv[2, 1] * y + hinv[2, 2]
    front = bw > 0
    bw = np.where(front, bw, 1.0)
    ox, oy = texture.origin
    mx = ((bx / bw + ox) * texture.ppm - 0.5).astype(np.float32)
    my = ((by / bw + oy) * texture.ppm - 0.5).astype(np.float32)
    mx[~front] = -1e6
    # The texture is far finer than a camera pixel: pre-blur it to the footprint of one
    # supersample so that the point samples below do not alias.
    footprint = texture.ppm / (float(np.median(bw[front])) * camera.fx * supersample)
    tex = texture.image
    if footprint > 1.5:
        tex = cv2.GaussianBlur(tex, (0, 0), 0.5 * footprint)
    big = cv2.remap(
        tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND
    )
    img = cv2.resize(big, (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    img = img.astype(np.float32)
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def project(camera: Intrinsics, points: np.ndarray, rvec: np.ndarray, tvec: np.ndarray):
    px, _ = cv2.projectPoints(
        points.astype(np.float64), rvec, tvec, camera.matrix(), np.array(camera.dist)
    )
    return px.reshape(-1, 2)


def texture_outline(texture: Texture) -> np.ndarray:
    """The printed sheet's four corners in board coordinates (4 x 3, metres)."""
    x0, y0 = -texture.origin[0], -texture.origin[1]
    x1, y1 = x0 + texture.size[0], y0 + texture.size[1]
    return np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], np.float64)


def random_poses(
    camera: Intrinsics,
    texture: Texture,
    n: int,
    rng: np.random.Generator,
    *,
    margin: float = 12.0,
    depth: tuple[float, float] = (0.32, 0.6),
    tilt_deg: float = 40.0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Poses spread over the image, depths and tilts, with the whole sheet in view."""
    outline = texture_outline(texture)
    # Points along the sheet's edges, not only its corners: barrel distortion bows the
    # edges outwards past the corners.
    t = np.linspace(0.0, 1.0, 12)[:, None]
    corners = np.vstack([outline[i] + t * (outline[(i + 1) % 4] - outline[i]) for i in range(4)])
    centre = np.array(
        [texture.size[0] / 2 - texture.origin[0], texture.size[1] / 2 - texture.origin[1], 0.0]
    )
    out: list[tuple[np.ndarray, np.ndarray]] = []
    while len(out) < n:
        ang = np.radians(rng.uniform(-tilt_deg, tilt_deg, 2))
        spin = np.radians(rng.uniform(-25, 25))
        rvec = np.array([ang[0], ang[1], spin])
        r, _ = cv2.Rodrigues(rvec)
        z = rng.uniform(*depth)
        u, v = rng.uniform(0.15, 0.85) * camera.width, rng.uniform(0.15, 0.85) * camera.height
        ray = cv2.undistortPoints(
            np.array([[[u, v]]], np.float64), camera.matrix(), np.array(camera.dist)
        ).reshape(2)
        tvec = z * np.array([ray[0], ray[1], 1.0]) - r @ centre
        px = project(camera, corners, rvec, tvec)
        inside = (
            (px[:, 0] > margin)
            & (px[:, 0] < camera.width - 1 - margin)
            & (px[:, 1] > margin)
            & (px[:, 1] < camera.height - 1 - margin)
        )
        cam_pts = (r @ corners.T).T + tvec
        if inside.all() and (cam_pts[:, 2] > 0.05).all():
            out.append((rvec, tvec))
    return out


def write_views(
    folder: Path,
    camera: Intrinsics,
    texture: Texture,
    n: int,
    seed: int,
    **pose_args: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render ``n`` views into ``folder`` as view_NN.png; returns their poses."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    poses = random_poses(camera, texture, n, rng, **pose_args)
    for i, (rvec, tvec) in enumerate(poses):
        img = render(camera, texture, rvec, tvec, rng=rng)
        cv2.imwrite(str(folder / f"view_{i:02d}.png"), img)
    return poses
