"""A run's live view and shadow bundle, set up and closed (the runner calls these).

Kept apart from runner.py so the run's core stays as it was: each function is one
step the runner takes when `--live` or `--shadow` asks for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from grasprt.bundle import check_against_profile, load_bundle
from grasprt.errors import ConfigError
from grasprt.runtime.inference import Pipeline
from grasprt.runtime.live import LiveView, parse_address
from grasprt.runtime.policy import OnnxPolicy
from grasprt.runtime.shadow import ShadowPolicy
from grasprt.runtime.sinks import Tee
from grasprt.types import Drivers, Policy

if TYPE_CHECKING:
    from grasprt.runtime.runner import Run, RunReport


def shadowed(run: Run, live: Policy) -> ShadowPolicy:
    """The live policy with `--shadow DIR`'s bundle beside it, checked like the live one."""
    cfg = run.cfg
    assert cfg.shadow
    bundle = load_bundle(cfg.shadow)
    check_against_profile(bundle, run.profile)
    if bundle.robot != run.bundle.robot:
        raise ConfigError(
            f"--shadow {cfg.shadow}: a bundle for {bundle.robot}, the live one is for "
            f"{run.bundle.robot}"
        )
    if bundle.camera != run.bundle.camera:
        raise ConfigError(
            f"--shadow {cfg.shadow}: its camera differs from the live bundle's, so it "
            "cannot run on the same model view"
        )
    shadow = OnnxPolicy(Pipeline(bundle, cfg.inference), truth_mask=cfg.gt_mask)
    rate = run.rate_hz or run.bundle.rate_hz
    return ShadowPolicy(
        live,
        shadow,
        name=str(cfg.shadow),
        limiter=run.limiter,
        live_scale=np.asarray(run.bundle.action_scale),
        shadow_scale=np.asarray(bundle.action_scale),
        period_s=None if cfg.sim_clock else 1.0 / rate,
    )


def open_live(run: Run) -> LiveView | None:
    if not run.cfg.live:
        return None
    address = parse_address(run.cfg.live)
    live = LiveView(address, kin=run.kin)
    live.start()
    where = f"{address.host}:{live.port}"
    run.progress(f"live view: Foxglove WebSocket on ws://{where}")
    if not address.loopback:
        # Straight to stderr: a bench's runs have no progress lines, and this must show.
        print(
            f"grasprt: warning: live view listening on {address.host}, beyond this "
            "machine: anyone who can reach it sees the camera and the arm",
            file=sys.stderr,
        )
    return live


def sinks(run: Run) -> Any:
    """The loop's one recorder: the flight recorder, the live view, or a tee of both."""
    parts = [s for s in (run.recorder, run.live) if s is not None]
    sink = None if not parts else parts[0] if len(parts) == 1 else Tee(*parts)
    if isinstance(run.policy, ShadowPolicy):
        run.policy.sink = sink
        run.policy.clock_now = run.drivers.clock.now
    return sink


def note_camera(run: Run, d: Drivers) -> None:
    """Once the camera is connected: its intrinsics into the record (for replay) and the
    sinks (frames then carry the model view and the camera's calibration)."""
    intr = d.camera.intrinsics
    assert intr is not None
    run.sink.set_camera(intr, run.bundle.camera)
    run.sink.put_event(d.clock.now(), "camera", intrinsics=intr.to_dict())


def close_extras(run: Run, report: RunReport) -> None:
    if run.live is not None:
        report.live = run.live.close()
    if isinstance(run.policy, ShadowPolicy):
        report.shadow = run.policy.report()
