"""Read a PyTorch checkpoint into one of the paper's networks, or say in one line why not.

A checkpoint is the network's state_dict, saved with ``torch.save``: either the
state_dict itself, or a dict ``{"state_dict": ..., "arch": ...}``. For the segmenter
``arch`` is its widths (a list of 4, or ``{"widths": [...]}``); without it the widths
are read from the convolution weights. The controller's architecture is fixed.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from grasprt.errors import GrasprtError
from grasprt.export.models import PAPER_WIDTHS, Controller, Segmenter


class CheckpointError(GrasprtError):
    """A checkpoint file that cannot become the network it is meant for."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], Any]:
    """(state_dict, arch or None) from a checkpoint file."""
    sd, arch, _ = _read(path)
    return sd, arch


def _read(path: str | Path) -> tuple[dict[str, torch.Tensor], Any, dict[str, Any]]:
    """(state_dict, arch or None, the wrapping dict or {}) from a checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a PyTorch checkpoint")
    try:
        # weights_only: a checkpoint is data; never run pickled code from it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the error below says all there is to say
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load fails with whatever its parsers raise
        if "Unsupported global" in str(e):
            raise CheckpointError(
                f"{path}: holds pickled Python objects, not only tensors; save the model's "
                "state_dict() instead"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_reason(e)})") from None
    arch = None
    wrapper: dict[str, Any] = {}
    if isinstance(obj, dict) and "state_dict" in obj:
        wrapper = obj
        arch = obj.get("arch")
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors)"
        )
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} of the state_dict is not a tensor")
    return obj, arch, wrapper


def _reason(e: Exception) -> str:
    text = str(e)
    if "WeightsUnpickler error:" in text:  # the useful part follows torch's long preamble
        text = text.split("WeightsUnpickler error:", 1)[1]
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _segmenter_widths(path: Path, sd: dict[str, torch.Tensor], arch: Any) -> tuple[int, ...]:
    if isinstance(arch, dict):
        arch = arch.get("widths")
    if arch is not None:
        if (
            not isinstance(arch, list | tuple)
            or len(arch) != 4
            or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in arch)
        ):
            raise CheckpointError(f"{path}: 'arch' must give 4 positive segmenter widths")
        return tuple(arch)
    inferred = []
    for i, default in enumerate(PAPER_WIDTHS, start=1):
        w = sd.get(f"conv{i}.weight")
        inferred.append(int(w.shape[0]) if w is not None and w.dim() == 4 else default)
    return tuple(inferred)


def fit_state_dict(path: Path, net: nn.Module, sd: dict[str, torch.Tensor], what: str) -> None:
    """Load ``sd`` into ``net``, naming the first key that does not fit."""
    want = net.state_dict()
    for key, tensor in want.items():
        if key not in sd:
            raise CheckpointError(f"{path}: state_dict lacks {key!r}, which the {what} needs")
        got = sd[key]
        if tuple(got.shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: {key!r} has shape {list(got.shape)}, the {what} needs "
                f"{list(tensor.shape)}"
            )
        if not got.is_floating_point():
            raise CheckpointError(f"{path}: {key!r} has dtype {got.dtype}, expected floats")
        if not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"{path}: {key!r} holds non-finite values")
    extra = [k for k in sd if k not in want]
    if extra:
        raise CheckpointError(f"{path}: unexpected key {extra[0]!r} in the state_dict of a {what}")
    net.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()})


def load_segmenter(path: str | Path) -> Segmenter:
    path = Path(path)
    sd, arch = read_checkpoint(path)
    widths = _segmenter_widths(path, sd, arch)
    net = Segmenter(widths)
    fit_state_dict(path, net, sd, f"segmenter (widths {list(widths)})")
    return net.eval()


def load_controller(path: str | Path) -> Controller:
    path = Path(path)
    sd, _ = read_checkpoint(path)
    net = Controller()
    fit_state_dict(path, net, sd, "controller")
    return net.eval()


def controller_normalisation(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The (offset, scale) a controller checkpoint was trained with, if it says.

    A checkpoint ``{"state_dict": ..., "state_normalisation": {"offset": [8],
    "scale": [8]}}`` carries its own; without one the exporter uses the profile's joint
    ranges (``defaults.state_normalisation``).
    """
    path = Path(path)
    norm = _read(path)[2].get("state_normalisation")
    if norm is None:
        return None
    try:
        offset = np.asarray(norm["offset"], dtype=np.float32).reshape(-1)
        scale = np.asarray(norm["scale"], dtype=np.float32).reshape(-1)
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{path}: state_normalisation must be {{'offset': [8 numbers], 'scale': [8 numbers]}}"
        ) from None
    if offset.shape != (8,) or scale.shape != (8,):
        raise CheckpointError(f"{path}: state_normalisation needs 8 offsets and 8 scales")
    if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise CheckpointError(f"{path}: state_normalisation scales must be finite and > 0")
    return offset, scale
