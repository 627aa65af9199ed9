"""The hand-eye solve as one PNG: per-pose residuals and the methods' agreement.

Drawn with matplotlib (the ``plot``/``dev`` extras), imported only when a plot is asked
for; without it ``--plot`` is refused in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grasprt.calibration.handeye import HandEyeResult
from grasprt.calibration.mount import Mount
from grasprt.errors import ConfigError


def plot_hand_eye(result: HandEyeResult, mount: Mount, path: Path) -> None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("--plot needs matplotlib (pip install 'grasprt[plot]')") from None
    fig = Figure(figsize=(12, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_res, ax_mm, ax_deg = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.4, 1, 1]})
    idx = np.arange(len(result.view_rms_px))
    ax_res.bar(idx + 1, result.view_rms_px, color="tab:blue")
    ax_res.axhline(result.rms_px, color="black", lw=0.8, ls="--")
    ax_res.set_title(f"reprojection per pose (RMS {result.rms_px:.3f} px)")
    ax_res.set_xlabel("pose")
    ax_res.set_ylabel("px")
    agree = result.agreement()
    names = list(agree)
    ax_mm.bar(names, [agree[n]["mm"] for n in names], color="tab:orange")
    ax_mm.set_title("each method vs the refined mount")
    ax_mm.set_ylabel("mm")
    ax_deg.bar(names, [agree[n]["deg"] for n in names], color="tab:green")
    ax_deg.set_title("each method vs the refined mount")
    fig.suptitle(
        f"hand-eye: {len(result.view_rms_px)} poses; the mount is "
        f"{mount.translation_mm:.2f} mm and {mount.rotation_deg:.3f} deg off the URDF's"
    )
    ax_deg.set_ylabel("deg")
    for ax in (ax_mm, ax_deg):
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.tight_layout()
    try:
        fig.savefig(str(path))
    except OSError as e:
        raise ConfigError(f"--plot {path}: cannot write ({e.strerror})") from None
