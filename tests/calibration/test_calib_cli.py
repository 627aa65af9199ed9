"""`grasprt calibrate-camera` and `grasprt view`, end to end through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from bundle_factory import color_segmenter, constant_controller, write_bundle
from calib_synth import TRUE_CAMERA

from grasprt.calibration.camera_info import load_camera_info, save_camera_info
from grasprt.calibration.model_view import REFERENCE_MODEL_CAMERA
from grasprt.calibration.view import LABEL_H
from grasprt.cli import main
from grasprt.types import Intrinsics

CHESS = ["--board", "chessboard:9x6", "--square", "0.025"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit 2 and one error line, the last (progress lines may come before it)."""
    assert code == 2
    assert "Traceback" not in err
    assert err.count("grasprt: error:") == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("grasprt: error:"), err
    for fragment in fragments:
        assert fragment in last


def write_video(path: Path, frames: list[np.ndarray], repeat: int = 1) -> Path:
    """A lossless (FFV1) video of RGB or grey frames, each shown ``repeat`` times."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(
        str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (w, h)
    )
    assert writer.isOpened()
    for f in frames:
        bgr = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR if f.ndim == 2 else cv2.COLOR_RGB2BGR)
        for _ in range(repeat):
            writer.write(bgr)
    writer.release()
    return path


def test_calibrate_from_images_writes_yaml_json_and_plot(tmp_path, capsys, chessboard_views):
    out, js = tmp_path / "wrist.yaml", tmp_path / "wrist.json"
    args = ["calibrate-camera", "--images", chessboard_views.folder, *CHESS]
    code, stdout, stderr = run_cli([*args, "--out", out, "--json", js], capsys)
    assert code == 0, stderr
    assert "[1/14] view_00.png: 54 corners" in stderr
    assert "RMS reprojection error" in stdout and "fx" in stdout

    intr = load_camera_info(out)
    assert abs(intr.fx / TRUE_CAMERA.fx - 1) < 0.005
    assert abs(intr.cx - TRUE_CAMERA.cx) < 2
    doc = json.loads(js.read_text())
    assert {"fx", "fy", "cx", "cy", "dist", "rms", "views_used"} <= set(doc)
    assert doc["views_used"] == 14 and doc["rms"] < 0.3
    assert doc["fx"] == intr.fx and doc["dist"] == list(intr.dist)
    assert set(doc["per_view_errors"]) == {f"view_{i:02d}.png" for i in range(14)}
    assert doc["std"]["fx"] > 0

    plot = cv2.imread(str(tmp_path / "wrist.coverage.png"))
    assert plot is not None and plot.shape[0] > 200 and plot.shape[1] > 600
    assert f"wrote {out}, {tmp_path / 'wrist.coverage.png'}, {js}" in stdout


def test_a_board_size_that_matches_nothing_says_what_the_images_show(
    tmp_path, capsys, chessboard_views
):
    folder = tmp_path / "few"
    folder.mkdir()
    for i in range(2):
        shutil.copy(chessboard_views.folder / f"view_{i:02d}.png", folder)
    args = [
        "calibrate-camera",
        "--images",
        folder,
        "--square",
        "0.025",
        "--out",
        tmp_path / "c.yaml",
    ]
    code, _, err = run_cli([*args, "--board", "chessboard:10x7"], capsys)
    assert_one_line_error(
        code, err, "chessboard:10x7 found in none of the 2 images", "show chessboard:9x6"
    )
    code, _, err = run_cli([*args, "--board", "chessboard:9x6"], capsys)
    assert_one_line_error(code, err, "only 2 view(s) with a detected board; need at least 8")


def test_unreadable_and_mixed_size_images_are_named(tmp_path, capsys, chessboard_views):
    folder = tmp_path / "imgs"
    shutil.copytree(chessboard_views.folder, folder)
    (folder / "view_05.png").write_text("this is not a PNG")
    args = ["calibrate-camera", "--images", folder, *CHESS, "--out", tmp_path / "c.yaml"]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "view_05.png: not a readable image")

    shutil.copy(chessboard_views.folder / "view_05.png", folder)
    small = cv2.resize(cv2.imread(str(folder / "view_03.png")), (320, 240))
    cv2.imwrite(str(folder / "view_03.png"), small)
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "view_03.png: image is 320x240", "before it are 640x480")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "c.yaml", *CHESS], "give exactly one of --images DIR, --camera SPEC"),
        (["--images", ".", "--camera", "opencv:0", "--out", "c.yaml", *CHESS], "exactly one"),
        (["--images", ".", "--out", "c.yaml", "--board", "chessboard:9x6"], "and --square"),
        (["--images", ".", "--out", "c.yaml", "--board", "checker:9x6", "--square", "0.02"],
         "--board checker:9x6: expected chessboard:COLSxROWS"),
        (["--images", ".", "--out", "c.yaml", "--board", "charuco:5x7", "--square", "0.04"],
         "a ChArUco board needs --marker"),
        (["--images", "nowhere", "--out", "c.yaml", *CHESS], "--images nowhere: not a folder"),
        (["--images", ".", "--out", "no/c.yaml", *CHESS], "--out no/c.yaml: folder no does not"),
        (["--images", ".", "--out", "c.yaml", "--json", ".", *CHESS], "--json .: is a folder"),
        (["--images", ".", "--out", "c.yaml", "--board", "charuco:5x7", "--square", "0.04",
          "--marker", "0.03", "--dictionary", "DICT_9X9_1"], "unknown ArUco dictionary"),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_errors(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["calibrate-camera", *args], capsys)
    assert_one_line_error(code, err, message)


def test_help_teaches_with_examples(capsys):
    code, out, _ = run_cli(["calibrate-camera", "--help"], capsys)
    assert code == 0
    assert "Examples:" in out and "--images shots/ --board chessboard:9x6" in out
    assert "charuco:COLSxROWS" in out
    code, out, _ = run_cli(["view", "--help"], capsys)
    assert code == 0 and "grasprt view --camera realsense --bundle" in out


def test_live_calibration_from_an_opencv_video_camera(tmp_path, capsys, chessboard_views):
    frames = [
        cv2.imread(str(chessboard_views.folder / f"view_{i:02d}.png"), cv2.IMREAD_GRAYSCALE)
        for i in range(14)
    ]
    # Each pose held for 6 frames: views are taken only once the board holds still.
    video = write_video(tmp_path / "board.avi", frames, repeat=6)
    out, saved = tmp_path / "live.yaml", tmp_path / "taken"
    args = ["calibrate-camera", "--camera", f"opencv:{video},loop", *CHESS, "--out", out]
    extra = ["--min-views", "8", "--max-views", "8", "--timeout", "60", "--save-views", saved]
    code, stdout, stderr = run_cli([*args, *extra], capsys)
    assert code == 0, stderr
    assert "Move the board over the whole image" in stderr
    assert "views  8  x [" in stderr and "enough views (8): calibrating" in stderr
    assert len(list(saved.glob("frame_*.png"))) == 8
    intr = load_camera_info(out)
    assert abs(intr.fx / TRUE_CAMERA.fx - 1) < 0.01
    assert abs(intr.cy - TRUE_CAMERA.cy) < 3
    assert "8 views used" in stdout


def test_show_needs_an_opencv_with_windows(tmp_path, capsys):
    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has window support")
    except cv2.error:
        pass
    args = ["calibrate-camera", "--camera", "opencv:0", *CHESS, "--out", tmp_path / "c.yaml"]
    code, _, err = run_cli([*args, "--show"], capsys)
    assert_one_line_error(code, err, "--show: this OpenCV has no window support")


def _yellow_disc_frame(camera: Intrinsics, point: np.ndarray) -> np.ndarray:
    px, _ = cv2.projectPoints(
        point[None], np.zeros(3), np.zeros(3), camera.matrix(), np.array(camera.dist)
    )
    u, v = px.reshape(2)
    frame = np.full((camera.height, camera.width, 3), 90, np.uint8)
    cv2.circle(frame, (round(u), round(v)), 22, (235, 205, 20), -1)
    return frame


def test_view_writes_camera_model_view_and_mask_side_by_side(tmp_path, capsys):
    point = np.array([0.18, -0.1, 1.0])  # the target's direction from the camera
    video = write_video(tmp_path / "clip.avi", [_yellow_disc_frame(TRUE_CAMERA, point)] * 5)
    calib = tmp_path / "wrist.yaml"
    save_camera_info(calib, TRUE_CAMERA, "wrist")
    bundle = write_bundle(tmp_path / "bundle", color_segmenter(), constant_controller([0.0] * 8))
    out = tmp_path / "view.png"
    args = ["view", "--camera", f"opencv:{video}", "--calibration", calib, "--bundle", bundle]
    code, stdout, stderr = run_cli([*args, "--out", out, "--frames", "3"], capsys)
    assert code == 0, stderr
    assert "model view: camera 640x480" in stdout and "undistorted" in stdout
    n_mask = int(stdout.split("segmenter: ")[1].split(" of ")[0])
    assert n_mask > 0

    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    cam_w = round(640 * 400 / 480)
    assert img.shape == (400 + LABEL_H, cam_w + 400 + 400 + 2 * 8, 3)
    mask = img[LABEL_H:, cam_w + 8 + 400 + 8 :]
    green = (mask[..., 1] > 200) & (mask[..., 0] < 30)
    assert green.sum() == n_mask * 16  # each mask pixel is 4x4 model pixels
    # The target sits in the mask where the bundle's camera sees its direction.
    m = REFERENCE_MODEL_CAMERA
    expect = np.array([m.cx + m.fx * point[0], m.cy + m.fy * point[1]])
    ys, xs = np.nonzero(green)
    assert np.linalg.norm([xs.mean() - expect[0], ys.mean() - expect[1]]) < 3.0


def test_view_needs_intrinsics_from_somewhere(tmp_path, capsys):
    video = write_video(tmp_path / "clip.avi", [np.zeros((480, 640, 3), np.uint8)] * 3)
    args = ["view", "--camera", f"opencv:{video}", "--out", tmp_path / "v.png", "--frames", "2"]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "reports no intrinsics: pass --calibration FILE.yaml")


def test_view_through_the_simulated_wrist_camera(tmp_path, capsys):
    out = tmp_path / "sim.png"
    code, stdout, stderr = run_cli(
        ["view", "--camera", "sim", "--out", out, "--frames", "2"], capsys
    )
    assert code == 0, stderr
    assert "the camera is the bundle's camera (400x400): no remap" in stdout
    img = cv2.imread(str(out))
    assert img.shape == (400 + LABEL_H, 400 + 8 + 400, 3)
    # No remap: the model view panel is the camera panel.
    assert np.array_equal(img[LABEL_H:, :400], img[LABEL_H:, 408:])


def test_view_through_the_simulated_camera_with_a_calibration_file(tmp_path, capsys):
    wide = tmp_path / "wide.yaml"
    save_camera_info(wide, Intrinsics(640, 480, 240.0, 240.0, 319.5, 239.5), "wide")
    out = tmp_path / "dry.png"
    args = ["view", "--camera", "sim", "--calibration", wide, "--out", out, "--frames", "2"]
    code, stdout, stderr = run_cli(args, capsys)
    assert code == 0, stderr
    assert "camera 640x480 (106.3x90.0 deg) -> model 400x400 (80.0x80.0 deg)" in stdout
    assert "the camera fills all of it" in stdout
    assert cv2.imread(str(out)).shape == (400 + LABEL_H, round(640 * 400 / 480) + 8 + 400, 3)
    code, _, err = run_cli([*args[:4], "realsense", *args[5:]], capsys)
    assert_one_line_error(code, err, "--camera sim takes --calibration FILE.yaml")
