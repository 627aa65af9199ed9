"""A fast renderer for the wrist camera: table, lighting, soft shadows, spheres, discs.

The table is a plane, so its texture reaches the image by one perspective warp; the
point light's falloff is computed on a coarse pixel grid and upsampled. Spheres are
ray-traced analytically, but only inside their small bounding boxes, with several
rays per pixel so their edges are anti-aliased. A lens with distortion is emulated
by rendering a wider pinhole canvas and remapping it. Colours are kept in 0..255
floats until the last step: exposure and colour of the light, then sensor noise.
The arm is not drawn; the fingers are, where the world gives them (`hand_parts`: the
MuJoCo world does, the kinematic one does not), as shaded boxes painted over the scene
(they are the nearest things the wrist camera sees).
"""

from __future__ import annotations

import cv2
import numpy as np

from grasprt.drivers.sim import texture
from grasprt.drivers.sim.optics import View, block_mean, distortion_maps, ray_sphere
from grasprt.drivers.sim.scene import Ball, Box, Disc, SceneSnapshot
from grasprt.types import Intrinsics

_TEXTURE_CENTRE = (0.6, 0.0)  # where the middle of the texture lies on the table
_WALL_GREY = 150.0  # what is seen above the table's far edge (a tilted camera only)
_SHADOW_STRENGTH = 0.9  # fraction of the direct light a sphere's umbra blocks
_SHININESS = 40.0
_GRID_PX = 16  # spacing of the coarse lighting grid
_NOISE_MARGIN = 64  # the noise bank has this many more rows; each frame takes a random window


def _irradiance(
    light: np.ndarray, table_z: float, x: np.ndarray, y: np.ndarray, z: float
) -> np.ndarray:
    """Direct light from a point source on a horizontal surface, 1.0 right under it on the table."""
    h0 = light[2] - table_z
    dz = light[2] - z
    dist2 = (light[0] - x) ** 2 + (light[1] - y) ** 2 + dz * dz
    return h0**2 * dz / (dist2 * np.sqrt(dist2))


class Renderer:
    """Renders a :class:`SceneSnapshot` as the camera `intr` would see it (RGB uint8)."""

    def __init__(self, intr: Intrinsics, noise_std: float = 2.0) -> None:
        self.intr = intr
        self.noise_std = noise_std
        # Textures are made on first use; a first frame that takes a second would trip
        # the loop's heartbeat watchdog.
        texture.preload()
        self._maps: tuple[np.ndarray, np.ndarray] | None = None
        self.canvas = Intrinsics(intr.width, intr.height, intr.fx, intr.fy, intr.cx, intr.cy)
        if intr.dist:
            self.canvas, mx, my = distortion_maps(intr)
            self._maps = (mx, my)
        # A fixed bank of unit Gaussian noise: drawing 0.5 M normals per frame would cost
        # more than the whole render; a random window of the bank is as good to a network.
        bank = np.random.default_rng(0x5EED).standard_normal(
            (intr.height + _NOISE_MARGIN, intr.width, 3), dtype=np.float32
        )
        self._noise = bank
        w, h = self.canvas.width, self.canvas.height
        gw, gh = max(2, -(-w // _GRID_PX)), max(2, -(-h // _GRID_PX))
        # Sample where cv2.resize puts source pixel centres, so the upsampling is exact.
        self._grid_u = (np.arange(gw) + 0.5) * w / gw - 0.5
        self._grid_v = (np.arange(gh) + 0.5) * h / gh - 0.5

    def render(self, snap: SceneSnapshot, rng: np.random.Generator) -> np.ndarray:
        look = snap.look
        view = View.of(self.canvas, snap.camera_pose)
        light = np.asarray(look.light_pos, np.float64)
        # Exposure and the light's colour scale every pixel: fold them in from the start.
        gain = look.exposure * np.asarray(look.light_rgb, np.float32)
        img = self._table(view, snap, light, gain)
        balls = [snap.target, *(o for o in snap.clutter if isinstance(o, Ball))]
        for ball in balls:
            self._shadow(img, view, snap, light, ball)
        for disc in (o for o in snap.clutter if isinstance(o, Disc)):
            self._disc(img, view, snap, light, disc, gain)
        balls.sort(key=lambda b: -float(np.linalg.norm(b.centre - view.pos)))
        # A finger behind the target (the far one, with the sphere between them) is
        # painted before it, the others after: a painter's order per object.
        far = float(np.linalg.norm(snap.target.centre - view.pos))
        parts = sorted(snap.hand_parts, key=lambda b: -float(np.linalg.norm(b.centre - view.pos)))
        behind = [p for p in parts if float(np.linalg.norm(p.centre - view.pos)) > far]
        for part in behind:
            self._box(img, view, snap, light, part, gain)
        for ball in balls:
            self._ball(img, view, snap, light, ball, gain)
        for part in parts[len(behind) :]:
            self._box(img, view, snap, light, part, gain)
        if look.blur_sigma > 0.25:
            img = cv2.GaussianBlur(img, (0, 0), look.blur_sigma)
        if self._maps is not None:
            img = cv2.remap(img, *self._maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return self._sensor(img, rng)

    def _box(
        self, img: np.ndarray, view: View, snap: SceneSnapshot, light: np.ndarray, box: Box,
        gain: np.ndarray,
    ) -> None:
        """The box's faces that look at the camera, far to near, Lambert-shaded."""
        faces = []
        for axis in range(3):
            for sign in (-1.0, 1.0):
                normal = sign * box.rot[:, axis]
                centre = box.centre + normal * box.half[axis]
                if normal @ (view.pos - centre) <= 0.0:
                    continue  # faces away
                u, w = [a for a in range(3) if a != axis]
                du, dw = box.rot[:, u] * box.half[u], box.rot[:, w] * box.half[w]
                corners = np.array(
                    [centre - du - dw, centre + du - dw, centre + du + dw, centre - du + dw]
                )
                faces.append((float(np.linalg.norm(centre - view.pos)), normal, centre, corners))
        ambient = snap.look.ambient
        for _, normal, centre, corners in sorted(faces, key=lambda f: -f[0]):
            cam = view.to_camera(corners)
            if np.any(cam[:, 2] <= 0.01):
                continue
            to_light = light - centre
            lambert = max(float(normal @ to_light) / float(np.linalg.norm(to_light)), 0.0)
            shade = 255.0 * (ambient + (1.0 - ambient) * lambert)
            colour = (shade * np.asarray(box.rgb, np.float32) * gain).tolist()
            pts = np.round(view.project(cam) * 16).astype(np.int32)  # 4 bits of subpixel
            cv2.fillConvexPoly(img, pts, colour, lineType=cv2.LINE_AA, shift=4)

    def _sensor(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.noise_std > 0.0:
            dy = int(rng.integers(0, _NOISE_MARGIN + 1))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            window = self._noise[dy : dy + self.intr.height]  # whole rows: contiguous
            img = cv2.scaleAdd(window, sign * self.noise_std, img)
        cv2.threshold(img, 0.0, 0.0, cv2.THRESH_TOZERO, dst=img)
        # Rounds and saturates at 255 in one pass; values are already >= 0.
        return cv2.convertScaleAbs(img)

    def _table(
        self, view: View, snap: SceneSnapshot, light: np.ndarray, gain: np.ndarray
    ) -> np.ndarray:
        look, z0 = snap.look, snap.table_z
        k = np.array([[view.fx, 0, view.cx], [0, view.fy, view.cy], [0, 0, 1.0]])
        r_cb = view.rot.T  # camera-from-base rotation
        t_cb = -r_cb @ view.pos
        img_from_plane = k @ np.column_stack([r_cb[:, 0], r_cb[:, 1], z0 * r_cb[:, 2] + t_cb])
        # Pixel footprint on the table along the optical axis picks the texture's level.
        axis_z = view.rot[2, 2]
        depth = (z0 - view.pos[2]) / axis_z if axis_z < -1e-3 else np.inf
        full, half = texture.table_texture(look.texture)
        coarse = depth / view.fx > 1.2 * texture.RESOLUTION_M
        tex, res = (half, 2 * texture.RESOLUTION_M) if coarse else (full, texture.RESOLUTION_M)
        c, s = np.cos(look.texture_angle), np.sin(look.texture_angle)
        mid = (tex.shape[1] - 1) / 2.0
        plane_from_tex = np.array(
            [
                [res * c, -res * s, _TEXTURE_CENTRE[0] + look.texture_offset[0]],
                [res * s, res * c, _TEXTURE_CENTRE[1] + look.texture_offset[1]],
                [0.0, 0.0, 1.0],
            ]
        ) @ np.array([[1.0, 0, -mid], [0, 1.0, -mid], [0, 0, 1.0]])
        warped = cv2.warpPerspective(
            tex,
            img_from_plane @ plane_from_tex,
            (view.width, view.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        if snap.board is not None:
            self._board(warped, img_from_plane, snap, depth / view.fx)
        # Lighting on a coarse grid of rays, upsampled.
        x = ((self._grid_u - view.cx) / view.fx)[None, :]
        y = ((self._grid_v - view.cy) / view.fy)[:, None]
        dz = view.rot[2, 0] * x + view.rot[2, 1] * y + view.rot[2, 2]
        hits = dz < -1e-6
        t = np.where(hits, (z0 - view.pos[2]) / np.where(hits, dz, -1.0), 0.0)
        px = view.pos[0] + t * (view.rot[0, 0] * x + view.rot[0, 1] * y + view.rot[0, 2])
        py = view.pos[1] + t * (view.rot[1, 0] * x + view.rot[1, 1] * y + view.rot[1, 2])
        irr = np.where(hits, _irradiance(light, z0, px, py, z0), 0.5)
        illum = (look.ambient + (1.0 - look.ambient) * irr)[..., None] * gain
        illum = cv2.resize(
            illum.astype(np.float32), (view.width, view.height), interpolation=cv2.INTER_LINEAR
        )
        img = cv2.multiply(warped, illum, dtype=cv2.CV_32F)
        if dz.max() > -0.05:
            self._fill_wall(img, view, gain)
        return img

    def _board(
        self, warped: np.ndarray, img_from_plane: np.ndarray, snap: SceneSnapshot, footprint: float
    ) -> None:
        """Paint the calibration board's print over the table texture (it lies on it)."""
        assert snap.board is not None
        image, plane_from_image = snap.board.level(footprint if np.isfinite(footprint) else 0.0)
        h = img_from_plane @ plane_from_image
        size = (warped.shape[1], warped.shape[0])
        paper = cv2.warpPerspective(image, h, size, flags=cv2.INTER_LINEAR)
        cover = np.full(image.shape[:2], 255, np.uint8)
        cover = cv2.warpPerspective(cover, h, size, flags=cv2.INTER_LINEAR)
        a = cover.astype(np.float32)[..., None] / 255.0
        warped[:] = (warped * (1.0 - a) + paper * a).astype(np.uint8)

    def _fill_wall(self, img: np.ndarray, view: View, gain: np.ndarray) -> None:
        """Rays that graze or miss the table (a steeply tilted camera) see a grey wall."""
        x, y = view.sample_rays((0, 0, view.width, view.height), 1)
        dz = view.rot[2, 0] * x + view.rot[2, 1] * y + view.rot[2, 2]
        img[dz > -0.05] = _WALL_GREY * gain

    def _table_points(
        self, view: View, box: tuple[int, int, int, int], ss: int, z: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the sample rays of `box` meet the plane at height z: x, y and a hit flag."""
        x, y = view.sample_rays(box, ss)
        r = view.rot
        dz = r[2, 0] * x + r[2, 1] * y + r[2, 2]
        hits = dz < -1e-6
        t = np.where(hits, (z - view.pos[2]) / np.where(hits, dz, -1.0), 0.0)
        hits &= t > 0.0
        px = view.pos[0] + t * (r[0, 0] * x + r[0, 1] * y + r[0, 2])
        py = view.pos[1] + t * (r[1, 0] * x + r[1, 1] * y + r[1, 2])
        return px, py, hits

    def _plane_box(
        self, view: View, centre: np.ndarray, half: float
    ) -> tuple[int, int, int, int] | None:
        """Pixel box of a horizontal square on the table (its corners projected)."""
        corners = centre + np.array(
            [[sx * half, sy * half, 0.0] for sx in (-1, 1) for sy in (-1, 1)]
        )
        cam = view.to_camera(corners)
        if cam[:, 2].min() <= 1e-4:
            return None
        uv = view.project(cam)
        u0 = max(int(np.floor(uv[:, 0].min())), 0)
        v0 = max(int(np.floor(uv[:, 1].min())), 0)
        u1 = min(int(np.ceil(uv[:, 0].max())) + 1, view.width)
        v1 = min(int(np.ceil(uv[:, 1].max())) + 1, view.height)
        return (u0, v0, u1, v1) if u0 < u1 and v0 < v1 else None

    def _shadow(
        self, img: np.ndarray, view: View, snap: SceneSnapshot, light: np.ndarray, ball: Ball
    ) -> None:
        z0, c, r = snap.table_z, ball.centre, ball.radius
        if c[2] >= light[2] - 1e-3:
            return
        scale = (light[2] - z0) / (light[2] - c[2])
        spot = light + (c - light) * scale
        umbra = r * scale
        # The light has a size, so the penumbra widens as the sphere rises off the table.
        soft = 0.0006 + 0.05 * max(c[2] - r - z0, 0.0)
        box = self._plane_box(view, spot, umbra + 5.0 * soft)
        if box is None:
            return
        px, py, hits = self._table_points(view, box, 1, z0)
        rho = np.sqrt((px - spot[0]) ** 2 + (py - spot[1]) ** 2)
        occ = np.where(hits, 1.0 / (1.0 + np.exp(np.clip((rho - umbra) / soft, -50, 50))), 0.0)
        amb = snap.look.ambient
        direct = (1.0 - amb) * float(_irradiance(light, z0, spot[0], spot[1], z0))
        dim = 1.0 - _SHADOW_STRENGTH * occ * direct / (amb + direct)
        u0, v0, u1, v1 = box
        img[v0:v1, u0:u1] *= dim.astype(np.float32)[..., None]

    def _disc(
        self,
        img: np.ndarray,
        view: View,
        snap: SceneSnapshot,
        light: np.ndarray,
        disc: Disc,
        gain: np.ndarray,
    ) -> None:
        box = self._plane_box(view, disc.centre, disc.radius)
        if box is None:
            return
        z = float(disc.centre[2])
        px, py, hits = self._table_points(view, box, 2, z)
        inside = hits & ((px - disc.centre[0]) ** 2 + (py - disc.centre[1]) ** 2 <= disc.radius**2)
        cover = block_mean(inside.astype(np.float32), 2)[..., None]
        amb = snap.look.ambient
        irr = float(_irradiance(light, snap.table_z, disc.centre[0], disc.centre[1], z))
        colour = 255.0 * gain * np.asarray(disc.rgb, np.float32) * (amb + (1.0 - amb) * irr)
        u0, v0, u1, v1 = box
        patch = img[v0:v1, u0:u1]
        patch *= 1.0 - cover
        patch += cover * colour

    def _ball(
        self,
        img: np.ndarray,
        view: View,
        snap: SceneSnapshot,
        light: np.ndarray,
        ball: Ball,
        gain: np.ndarray,
    ) -> None:
        c = view.to_camera(ball.centre)
        if c[2] <= ball.radius + 1e-3:
            return
        box = view.box_around(c, ball.radius)
        if box is None:
            return
        u0, v0, u1, v1 = box
        area = (u1 - u0) * (v1 - v0)
        ss = 4 if area <= 400 else 2 if area <= 40000 else 1
        x, y = view.sample_rays(box, ss)
        r = ball.radius
        hit, t, a, b = ray_sphere(x, y, c, r)
        if not hit.any():
            return
        to_light = view.rot.T @ (light - ball.centre)
        to_light /= np.linalg.norm(to_light)
        # With the hit point t d and normal (t d - c) / r, every dot product reduces to
        # the ray terms: n.L = (t d.L - c.L) / r, n.d = (t |d|^2 - d.c) / r.
        d_l = x * to_light[0] + y * to_light[1] + to_light[2]
        n_l = (t * d_l - c @ to_light) / r
        d_len = np.sqrt(a)
        n_v = (b - t * a) / (r * d_len)  # the normal against the unit ray back to the eye
        # Blinn-Phong highlight: the half vector between the light and the eye, L + v.
        half_len = np.sqrt(np.maximum(2.0 - 2.0 * d_l / d_len, 1e-12))
        n_h = np.maximum((n_l + n_v) / half_len, 0.0)
        amb = snap.look.ambient
        h0 = light[2] - snap.table_z
        strength = (1.0 - amb) * h0**2 / float(np.sum((light - ball.centre) ** 2))
        diffuse = np.where(hit, amb + strength * np.maximum(n_l, 0.0), 0.0)
        gloss = np.where(hit, (strength * ball.specular) * n_h**_SHININESS, 0.0)
        cover = block_mean(hit.astype(np.float32), ss)[..., None]
        shade = block_mean(diffuse, ss)[..., None]
        shine = block_mean(gloss, ss)[..., None]
        colour = 255.0 * (np.asarray(ball.rgb) * gain * shade + gain * shine)
        patch = img[v0:v1, u0:u1]
        patch *= 1.0 - cover
        patch += colour.astype(np.float32)
