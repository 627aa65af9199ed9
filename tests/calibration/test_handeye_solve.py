"""Hand-eye solving on synthetic poses: each method recovers a known mount; the refined
solve works on projected corners; too few or too alike poses are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from grasprt.calibration.boards import Detection
from grasprt.calibration.handeye import (
    OPENCV_HAND_EYE,
    Observation,
    check_spread,
    solve_hand_eye,
    solve_methods,
)
from grasprt.calibration.mount import rotation_angle_deg
from grasprt.errors import ConfigError
from grasprt.kinematics import rpy_matrix, transform
from grasprt.types import Intrinsics

CAMERA = Intrinsics(640, 480, 520.0, 520.0, 319.5, 239.5)
# Some camera mount: a few centimetres off the link, turned in all three axes.
MOUNT = transform((0.04, -0.03, 0.07), (0.3, 1.4, -0.2))
BOARD = transform((0.6, 0.05, -0.05), (np.pi, 0.0, 0.4))  # board in the base frame
GRID = np.array([[i * 0.03, j * 0.03, 0.0] for j in range(5) for i in range(7)], np.float32)


def link_poses(n: int, seed: int = 1, turn: float = 0.5) -> list[np.ndarray]:
    """Link poses whose camera looks at the board from about 0.35 m, turned up to `turn` rad."""
    rng = np.random.default_rng(seed)
    centre = BOARD[:3, :3] @ GRID.mean(axis=0) + BOARD[:3, 3]
    out = []
    for _ in range(n):
        cam = np.eye(4)
        base = rpy_matrix(np.pi, 0.0, 0.0)  # looking down
        cam[:3, :3] = base @ rpy_matrix(*rng.uniform(-turn, turn, 3))
        cam[:3, 3] = centre - cam[:3, 2] * 0.35
        out.append(cam @ np.linalg.inv(MOUNT))
    return out


def board_in_camera(link: np.ndarray) -> np.ndarray:
    return np.linalg.inv(link @ MOUNT) @ BOARD


def apart(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return (
        float(np.linalg.norm(a[:3, 3] - b[:3, 3]) * 1000),
        rotation_angle_deg(a[:3, :3].T @ b[:3, :3]),
    )


def observations(links: list[np.ndarray], noise_px: float, seed: int = 2) -> list[Observation]:
    rng = np.random.default_rng(seed)
    obs = []
    for link in links:
        cam = board_in_camera(link)
        pts = GRID @ cam[:3, :3].T + cam[:3, 3]
        u = CAMERA.fx * pts[:, 0] / pts[:, 2] + CAMERA.cx
        v = CAMERA.fy * pts[:, 1] / pts[:, 2] + CAMERA.cy
        uv = np.column_stack([u, v])
        uv += rng.normal(0.0, noise_px, uv.shape)
        obs.append(Observation(link, Detection(uv.astype(np.float32), GRID.copy())))
    return obs


@pytest.mark.parametrize("opencv", [False, True] if OPENCV_HAND_EYE else [False])
def test_every_method_recovers_an_exact_mount(opencv: bool) -> None:
    links = link_poses(8)
    methods = solve_methods(links, [board_in_camera(t) for t in links], opencv=opencv)
    # OpenCV's ANDREFF may be left out (a translation that does not fit the motions).
    assert len(methods) >= 4 and {"TSAI", "PARK"} <= set(methods)
    for name, x in methods.items():
        mm, deg = apart(x, MOUNT)
        assert mm < 1e-6 * 1000 and deg < 1e-4, (name, mm, deg)


def test_methods_degrade_gracefully_with_noisy_board_poses() -> None:
    links = link_poses(12)
    rng = np.random.default_rng(5)
    cams = []
    for t in links:
        c = board_in_camera(t)
        noise = transform(tuple(rng.normal(0, 0.0005, 3)), tuple(rng.normal(0, 0.001, 3)))
        cams.append(c @ noise)
    for name, x in solve_methods(links, cams, opencv=False).items():
        mm, deg = apart(x, MOUNT)
        assert mm < 3.0 and deg < 0.3, (name, mm, deg)


def test_refined_solve_on_projected_corners() -> None:
    links = link_poses(10)
    result = solve_hand_eye(observations(links, noise_px=0.1), CAMERA)
    mm, deg = apart(result.mount, MOUNT)
    assert mm < 0.5 and deg < 0.05, (mm, deg)
    assert 0.05 < result.rms_px < 0.2  # the corners' noise, 0.1 px per axis
    assert len(result.view_rms_px) == 10
    bm, bd = apart(result.board, BOARD)
    assert bm < 0.5 and bd < 0.05


def test_too_few_poses_is_one_line() -> None:
    with pytest.raises(ConfigError, match="4 poses with the board detected, at least 5"):
        check_spread(link_poses(4))


def test_poses_too_alike_are_refused() -> None:
    # Five poses that only shift: no rotation at all.
    links = [transform((0.5 + 0.01 * i, 0.0, 0.3), (np.pi, 0.0, 0.0)) for i in range(6)]
    with pytest.raises(ConfigError, match="poses too alike to solve"):
        check_spread(links)
    # Large turns, all about one axis: the mount along it is unobservable.
    links = [transform((0.5, 0.0, 0.3), (np.pi, 0.0, 0.3 * i)) for i in range(6)]
    with pytest.raises(ConfigError, match=r"about axes at most 0\.0 deg apart"):
        check_spread(links)
    check_spread(link_poses(6))  # spread about several axes: accepted


def test_a_method_whose_translation_does_not_fit_the_motions_is_left_out() -> None:
    from grasprt.calibration.handeye import _consistent, motion_residual_mm
    from grasprt.calibration.handeye_methods import motions

    links = link_poses(8)
    pairs = motions(links, [board_in_camera(t) for t in links])
    wrong = MOUNT.copy()
    wrong[:3, 3] += [0.3, -0.1, 0.1]  # the rotation right, the translation 334 mm off
    assert motion_residual_mm(MOUNT, pairs) < 1e-6
    assert motion_residual_mm(wrong, pairs) > 10.0
    kept = _consistent({"TSAI": MOUNT, "ANDREFF": wrong}, pairs)
    assert list(kept) == ["TSAI"]
    # With noise every method misfits by about the same: all are kept.
    near = MOUNT.copy()
    near[:3, 3] += [0.0005, 0.0, 0.0]
    assert set(_consistent({"TSAI": MOUNT, "PARK": near}, pairs)) == {"TSAI", "PARK"}
