"""The coverage plot: where the board was seen, each view's error, and the coverage spans.

Drawn with matplotlib where it is installed (the ``plot``/``dev`` extras), through its
Agg canvas directly so no display and no global backend are involved; a robot PC with
only the runtime set gets the same picture drawn with OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from grasprt.calibration.boards import Board
from grasprt.calibration.coverage import DIMENSIONS, CoverageTracker, board_quad, view_params
from grasprt.calibration.solve import CalibrationResult, View
from grasprt.errors import ConfigError


@dataclass(frozen=True)
class PlotData:
    width: int
    height: int
    names: list[str]
    quads: list[np.ndarray]  # 4 x 2 per view
    corners: list[np.ndarray]  # N x 2 per view
    errors: list[float]  # px RMS per view
    dropped: list[bool]
    progress: dict[str, float]
    rms: float


def plot_data(
    result: CalibrationResult, views: list[View], board: Board, width: int, height: int
) -> PlotData:
    """Everything the plot shows, from the views found (used and dropped) and the result."""
    quads = [board_quad(board, v.detection) for v in views]
    tracker = CoverageTracker()
    for v, q in zip(views, quads, strict=True):
        if v.name in result.per_view_errors:
            tracker.add(view_params(q, width, height))
    errors = [result.per_view_errors.get(v.name, result.dropped.get(v.name, 0.0)) for v in views]
    return PlotData(
        width=width,
        height=height,
        names=[v.name for v in views],
        quads=quads,
        corners=[v.detection.image_points for v in views],
        errors=errors,
        dropped=[v.name in result.dropped for v in views],
        progress=tracker.progress(),
        rms=result.rms,
    )


def _matplotlib_plot(path: Path, d: PlotData) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(14, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_img, ax_err, ax_cov = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.35, 1.2, 0.7]})

    ax_img.set_title("board views in the image (red: dropped)")
    ax_img.add_patch(Rectangle((-0.5, -0.5), d.width, d.height, fill=False, color="black"))
    for quad, pts, bad in zip(d.quads, d.corners, d.dropped, strict=True):
        colour = "tab:red" if bad else "tab:blue"
        closed = np.vstack([quad, quad[:1]])
        ax_img.plot(closed[:, 0], closed[:, 1], color=colour, lw=0.8, alpha=0.7)
        ax_img.scatter(pts[:, 0], pts[:, 1], s=1.5, color=colour, alpha=0.5)
    ax_img.set_xlim(-0.5, d.width - 0.5)
    ax_img.set_ylim(d.height - 0.5, -0.5)
    ax_img.set_aspect("equal")

    ax_err.set_title(f"per-view RMS error (overall {d.rms:.3f} px)")
    idx = np.arange(len(d.errors))
    colours = ["tab:red" if bad else "tab:blue" for bad in d.dropped]
    ax_err.bar(idx, d.errors, color=colours)
    ax_err.axhline(d.rms, color="black", lw=0.8, ls="--")
    ax_err.set_xticks(idx)
    ax_err.set_xticklabels(d.names, rotation=90, fontsize=6)
    ax_err.set_ylabel("px")

    ax_cov.set_title("coverage (of ROS's targets)")
    values = [100 * d.progress[k] for k in DIMENSIONS]
    ax_cov.barh(
        list(DIMENSIONS), values, color=["tab:green" if v >= 100 else "tab:orange" for v in values]
    )
    ax_cov.set_xlim(0, 100)
    ax_cov.invert_yaxis()
    ax_cov.set_xlabel("%")
    fig.tight_layout()
    fig.savefig(str(path))


def _opencv_plot(path: Path, d: PlotData) -> None:
    scale = 640.0 / max(d.width, d.height)
    w, h = round(d.width * scale), round(d.height * scale)
    panel = np.full((h + 20, w + 20, 3), 255, np.uint8)
    cv2.rectangle(panel, (10, 10), (10 + w, 10 + h), (0, 0, 0), 1)
    for quad, pts, bad in zip(d.quads, d.corners, d.dropped, strict=True):
        colour = (40, 40, 220) if bad else (200, 110, 30)
        q = np.round((quad + 0.5) * scale + 10).astype(np.int32)
        cv2.polylines(panel, [q.reshape(-1, 1, 2)], True, colour, 1, cv2.LINE_AA)
        for p in pts:
            c = (round(float((p[0] + 0.5) * scale + 10)), round(float((p[1] + 0.5) * scale + 10)))
            cv2.circle(panel, c, 1, colour, -1)
    lines = [f"overall RMS {d.rms:.3f} px"]
    lines += [f"{k}: {100 * d.progress[k]:.0f}% of target" for k in DIMENSIONS]
    lines += [
        f"{n}: {e:.3f} px{' (dropped)' if bad else ''}"
        for n, e, bad in zip(d.names, d.errors, d.dropped, strict=True)
    ]
    text = np.full((max(panel.shape[0], 18 * len(lines) + 20), 360, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(text, line, (8, 22 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    canvas = np.full((max(panel.shape[0], text.shape[0]), panel.shape[1] + 360, 3), 255, np.uint8)
    canvas[: panel.shape[0], : panel.shape[1]] = panel
    canvas[: text.shape[0], panel.shape[1] :] = text
    if not cv2.imwrite(str(path), canvas):
        raise ConfigError(f"{path}: cannot write the coverage plot")


def write_coverage_plot(path: Path, data: PlotData, *, use_matplotlib: bool | None = None) -> str:
    """Write the PNG; returns which engine drew it ("matplotlib" or "opencv")."""
    if use_matplotlib is None:
        try:
            import matplotlib  # noqa: F401

            use_matplotlib = True
        except ImportError:
            use_matplotlib = False
    if use_matplotlib:
        try:
            _matplotlib_plot(path, data)
        except OSError as e:
            raise ConfigError(f"{path}: cannot write the coverage plot ({e.strerror})") from None
        return "matplotlib"
    _opencv_plot(path, data)
    return "opencv"
