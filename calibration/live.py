"""Collect board views from a live camera, guiding the user as ROS's calibrator does.

Each new frame is searched for the board. A view is taken only when the board has held
still for two frames (no motion blur, no rolling-shutter skew) and it adds something
the views so far lack (see :mod:`grasprt.calibration.coverage`). Progress goes to the
terminal, so it runs headless over SSH; ``show`` adds a window where OpenCV has one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from grasprt.calibration.boards import Board, Detection
from grasprt.calibration.coverage import CoverageTracker, board_quad, view_params
from grasprt.calibration.solve import View
from grasprt.errors import ConfigError, DriverError
from grasprt.types import Camera

WINDOW = "grasprt calibrate-camera"


@dataclass(frozen=True)
class LiveOptions:
    timeout_s: float = 600.0  # give up collecting (and calibrate with what there is)
    first_frame_timeout_s: float = 10.0
    # Board motion between consecutive frames, as a fraction of the image diagonal,
    # below which the board counts as still.
    still_fraction: float = 0.002
    quiet_report_s: float = 5.0  # how often to say that no board is in view
    poll_s: float = 0.005


@dataclass
class LiveViews:
    views: list[View]
    width: int
    height: int
    frames: int  # frames searched
    enough: bool  # coverage targets met


def _moved_px(a: Detection, b: Detection) -> float:
    """Mean motion of the corners both detections share, in pixels (inf if none)."""
    if a.object_points.shape == b.object_points.shape and np.array_equal(
        a.object_points, b.object_points
    ):
        return float(np.linalg.norm(a.image_points - b.image_points, axis=1).mean())
    return float("inf")


def check_window_support() -> None:
    """Refuse ``--show`` up front on an OpenCV build without a GUI (the headless wheel)."""
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error:
        raise ConfigError(
            "--show: this OpenCV has no window support (opencv-python-headless); "
            "run without --show, progress is printed in the terminal"
        ) from None


def _show(image_rgb: np.ndarray, det: Detection | None, line: str) -> None:
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    if det is not None:
        for p in det.image_points:
            cv2.circle(bgr, (round(float(p[0])), round(float(p[1]))), 3, (0, 255, 0), 1)
    cv2.putText(bgr, line, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
    cv2.imshow(WINDOW, bgr)
    cv2.waitKey(1)


def _wait_first_frame(camera: Camera, opts: LiveOptions):
    deadline = time.monotonic() + opts.first_frame_timeout_s
    while time.monotonic() < deadline:
        frame = camera.latest()
        if frame is not None:
            return frame
        time.sleep(opts.poll_s)
    raise DriverError(f"camera {camera.name}: no frame within {opts.first_frame_timeout_s:g} s")


def collect_live(
    camera: Camera,
    board: Board,
    tracker: CoverageTracker,
    echo: Callable[[str], None],
    options: LiveOptions | None = None,
    *,
    save_dir: Path | None = None,
    show: bool = False,
) -> LiveViews:
    """Views from a connected camera until coverage is met, time runs out, or Ctrl-C."""
    opts = options or LiveOptions()
    frame = _wait_first_frame(camera, opts)
    height, width = frame.image.shape[:2]
    still_px = opts.still_fraction * float(np.hypot(width, height))
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    echo(
        f"camera {camera.name}: {width}x{height}. Move the board over the whole image, near "
        "and far, tilted left, right, up and down; hold it still for a moment at each place."
    )
    views: list[View] = []
    previous: Detection | None = None
    last_seq: int | None = None
    frames = 0
    start = last_report = time.monotonic()
    try:
        while not tracker.enough():
            now = time.monotonic()
            if now - start > opts.timeout_s:
                echo(f"stopped after {opts.timeout_s:g} s without full coverage")
                break
            frame = camera.latest()
            if frame is None or frame.seq == last_seq:
                time.sleep(opts.poll_s)
                continue
            last_seq = frame.seq
            frames += 1
            if frame.image.shape[:2] != (height, width):
                raise DriverError(
                    f"camera {camera.name}: frame size changed from {width}x{height} to "
                    f"{frame.image.shape[1]}x{frame.image.shape[0]}"
                )
            grey = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
            det = board.detect(grey, fast=True)
            if show:
                _show(frame.image, det, tracker.summary())
            if det is None:
                previous = None
                if now - last_report > opts.quiet_report_s:
                    echo(f"no board in view ({tracker.summary()})")
                    last_report = now
                continue
            still = previous is not None and _moved_px(det, previous) <= still_px
            previous = det
            if not still:
                continue
            params = view_params(board_quad(board, det), width, height)
            if not tracker.adds_something(params):
                if now - last_report > opts.quiet_report_s:
                    echo(f"this view adds nothing new: {tracker.hint()}")
                    last_report = now
                continue
            tracker.add(params)
            name = f"frame_{frame.seq:06d}"
            views.append(View(name, det))
            if save_dir is not None:
                cv2.imwrite(
                    str(save_dir / f"{name}.png"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
                )
            echo(tracker.summary())
            last_report = now
    except KeyboardInterrupt:
        echo("interrupted: calibrating with the views taken so far")
    enough = tracker.enough()
    if enough:
        echo(f"enough views ({len(views)}): calibrating")
    return LiveViews(views, width, height, frames, enough)
