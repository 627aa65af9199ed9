"""A tuned pick saved as an ``[inference]`` section (``grasprt bench --tune --save``),
and the warning when it is loaded on another CPU than the one it was measured on.

A robot PC tunes once; `run`, `bench` and `eval` then take the file with ``--config``.
The file names the CPU model and instruction sets the figures came from. On another
CPU the pick may be slower or (bf16 without BF16 units) not run at all: a warning says
so, a reduced precision is gated again on this CPU before any driver connects (it is
at every load), and one it cannot run is refused in one line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from grasprt.config import InferenceSettings
from grasprt.errors import ConfigError
from grasprt.runtime.cpu import CpuInfo, cpu_info

_warned: set[tuple[str, tuple[str, ...]]] = set()


def elsewhere(cfg: InferenceSettings, here: CpuInfo | None = None) -> str | None:
    """Why ``cfg``'s tuning does not apply to this CPU as measured (None: it does)."""
    if not cfg.tuned_cpu and not cfg.tuned_isa:
        return None
    here = here or cpu_info()
    if cfg.tuned_cpu == here.model and set(cfg.tuned_isa) == set(here.isa):
        return None
    missing = sorted(set(cfg.tuned_isa) - set(here.isa))
    text = (
        f"[inference] was tuned on {cfg.tuned_cpu or 'another CPU'} "
        f"({', '.join(cfg.tuned_isa)}); this is {here.describe()}"
    )
    if missing:
        text += f", without {', '.join(missing)}"
    return text


def warn_if_tuned_elsewhere(cfg: InferenceSettings) -> None:
    why = elsewhere(cfg)
    key = (cfg.tuned_cpu, cfg.tuned_isa)
    if why and key not in _warned:
        _warned.add(key)
        gate = (
            f"re-gating {cfg.precision} on this CPU"
            if cfg.precision != "fp32"
            else "fp32 needs no gate"
        )
        print(
            f"grasprt: warning: {why}: {gate}; run `grasprt bench --tune --save FILE.toml` "
            "here for this machine's fastest",
            file=sys.stderr,
        )


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def inference_toml(cfg: InferenceSettings, cpu: CpuInfo, reason: str) -> str:
    """The ``[inference]`` section for ``cfg``, stamped with ``cpu``."""
    fields = {
        "provider": cfg.provider,
        "intra_op_threads": cfg.intra_op_threads,
        "graph_optimization": cfg.graph_optimization,
        "allow_spinning": cfg.allow_spinning,
        "fused": cfg.fused,
        "precision": cfg.precision,
        "placement": cfg.placement,
        "prewarm_ms": cfg.prewarm_ms,
        "tuned_cpu": cpu.model,
        "tuned_isa": cpu.isa,
    }
    head = [
        f"# grasprt bench --tune, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"# on {cpu.describe()}",
        "# " + reason.replace("\n", " "),
        "[inference]",
    ]
    return "\n".join(head + [f"{k} = {_value(v)}" for k, v in fields.items()]) + "\n"


def check_save_path(path: str) -> None:
    if not Path(path).resolve().parent.is_dir():
        raise ConfigError(f"--save {path}: its folder does not exist")
    if not path.endswith(".toml"):
        raise ConfigError(f"--save {path}: the pick is saved as TOML (FILE.toml)")


def save(path: str, cfg: InferenceSettings, cpu: CpuInfo, reason: str) -> None:
    try:
        Path(path).write_text(inference_toml(cfg, cpu, reason))
    except OSError as e:
        raise ConfigError(f"--save {path}: cannot write ({e.strerror})") from None
