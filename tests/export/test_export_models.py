"""The paper's architectures, their graph wrappers, and reading checkpoints into them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from grasprt.export.checkpoints import CheckpointError, load_controller, load_segmenter  # noqa: E402
from grasprt.export.defaults import IMAGE_MEAN, IMAGE_STD, state_normalisation  # noqa: E402
from grasprt.export.models import (  # noqa: E402
    PAPER_WIDTHS,
    Controller,
    ControllerGraph,
    Segmenter,
    SegmenterGraph,
)
from grasprt.profiles import SAWYER  # noqa: E402


def conv_shapes_and_macs(net: torch.nn.Module, *inputs: torch.Tensor) -> tuple[dict, int]:
    """Each conv's output shape, and the multiply-adds counted from what actually ran."""
    shapes: dict[str, tuple[int, ...]] = {}
    macs = 0

    def hook(name: str):
        def record(mod: torch.nn.Module, _in: Any, out: torch.Tensor) -> None:
            nonlocal macs
            shapes[name] = tuple(out.shape)
            if isinstance(mod, torch.nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                macs += out[0].numel() * mod.in_channels * k

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_children()]
    with torch.no_grad():
        net(*inputs)
    for h in handles:
        h.remove()
    return shapes, macs


@pytest.mark.parametrize("widths", [PAPER_WIDTHS, (3, 5, 7, 9)])
def test_segmenter_400_to_100_and_its_flops(widths: tuple[int, ...]) -> None:
    net = Segmenter(widths).eval()
    shapes, macs = conv_shapes_and_macs(net, torch.randn(1, 3, 400, 400))
    assert shapes["conv1"] == (1, widths[0], 400, 400)
    assert shapes["conv2"] == (1, widths[1], 200, 200)
    assert shapes["conv4"] == (1, widths[3], 100, 100)
    assert shapes["conv5"] == (1, 1, 100, 100)
    assert net.flops() == 2 * macs
    if widths == PAPER_WIDTHS:
        print(f"paper-shaped segmenter: {net.flops() / 1e9:.3f} GFLOP per image")
        assert 2.4e9 < net.flops() < 2.5e9


def test_segmenter_layers_follow_the_paper() -> None:
    net = Segmenter()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in net.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(convs) == 5 and len(pools) == 2
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert [c.dilation for c in convs] == [(1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]
    with pytest.raises(ValueError, match="4 positive integers"):
        Segmenter((16, 32, 32))


def test_controller_is_the_paper_net() -> None:
    net = Controller().eval()
    shapes, _ = conv_shapes_and_macs(net, torch.ones(1, 1, 100, 100), torch.zeros(1, 8))
    assert shapes["conv1"] == (1, 16, 24, 24)
    assert shapes["conv2"] == (1, 32, 5, 5)
    assert shapes["fc_mask"] == (1, 128) and shapes["fc_state"] == (1, 128)
    assert (net.fc_state.in_features, net.fc1.in_features, net.fc2.out_features) == (8, 256, 8)
    assert [c.stride for c in (net.conv1, net.conv2)] == [(4, 4), (4, 4)]
    with torch.no_grad():
        wild = net(torch.ones(2, 1, 100, 100), torch.full((2, 8), 1e6))
    assert wild.shape == (2, 8) and bool((wild.abs() <= 1).all())


def test_segmenter_graph_normalises_inside() -> None:
    torch.manual_seed(1)
    net = Segmenter((4, 4, 4, 4)).eval()
    image = np.random.default_rng(1).integers(0, 256, (1, 400, 400, 3), dtype=np.uint8)
    with torch.no_grad():
        got = SegmenterGraph(net)(torch.from_numpy(image))
        x = (image.astype(np.float32) / 255.0 - np.array(IMAGE_MEAN, np.float32)) / np.array(
            IMAGE_STD, np.float32
        )
        want = torch.sigmoid(net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())))
    assert got.dtype == torch.float32 and got.shape == (1, 1, 100, 100)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_controller_graph_maps_profile_range_to_unit() -> None:
    torch.manual_seed(2)
    net = Controller().eval()
    offset, scale = state_normalisation(SAWYER)
    np.testing.assert_allclose((np.append(SAWYER.upper, 1.0) - offset) / scale, 1.0, rtol=1e-6)
    np.testing.assert_allclose((np.append(SAWYER.lower, 0.0) - offset) / scale, -1.0, rtol=1e-6)
    graph = ControllerGraph(net, offset, scale).eval()
    mask = (torch.rand(1, 1, 100, 100) > 0.9).float()
    with torch.no_grad():
        at_centre = graph(mask, torch.from_numpy(offset)[None])
        at_upper = graph(
            mask, torch.from_numpy(np.append(SAWYER.upper, 1.0).astype(np.float32))[None]
        )
        torch.testing.assert_close(at_centre, net(mask, torch.zeros(1, 8)))
        torch.testing.assert_close(at_upper, net(mask, torch.ones(1, 8)), atol=1e-5, rtol=0)


# --- checkpoints ---------------------------------------------------------------------


def save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def test_segmenter_widths_from_weights_or_arch(tmp_path: Path) -> None:
    plain = save(tmp_path / "plain.pt", Segmenter((4, 6, 8, 10)).state_dict())
    assert load_segmenter(plain).widths == (4, 6, 8, 10)
    trained = Segmenter((5, 5, 6, 6))
    wrapped = save(
        tmp_path / "w.pt", {"state_dict": trained.state_dict(), "arch": {"widths": [5, 5, 6, 6]}}
    )
    loaded = load_segmenter(wrapped)
    torch.testing.assert_close(loaded.conv3.weight, trained.conv3.weight)
    assert not loaded.training


def test_controller_loads_its_weights(tmp_path: Path) -> None:
    trained = Controller()
    loaded = load_controller(save(tmp_path / "c.pt", {"state_dict": trained.state_dict()}))
    torch.testing.assert_close(loaded.fc2.bias, trained.fc2.bias)


class Opaque:
    """Stands for a training script's own objects saved next to the weights."""


def _broken(tmp: Path, name: str) -> Path:
    good = Segmenter((4, 4, 4, 4)).state_dict()
    path = tmp / f"{name.replace(' ', '_')}.pt"
    if name == "text file":
        path.write_text("not a checkpoint\n")
    elif name == "empty file":
        path.write_bytes(b"")
    elif name == "list":
        torch.save([1, 2, 3], path)
    elif name == "non-tensor entry":
        torch.save({**good, "epoch": 3}, path)
    elif name == "pickled object":
        torch.save({"state_dict": good, "optimizer": Opaque()}, path)
    elif name == "missing key":
        torch.save({k: v for k, v in good.items() if k != "conv3.bias"}, path)
    elif name == "extra key":
        torch.save({**good, "conv6.weight": torch.zeros(1)}, path)
    elif name == "wrong shape":
        torch.save({**good, "conv3.bias": torch.zeros(5)}, path)
    elif name == "nan weight":
        torch.save({**good, "conv2.bias": torch.full((4,), float("nan"))}, path)
    elif name == "bad arch":
        torch.save({"state_dict": good, "arch": [4, 4]}, path)
    return path


BAD_CHECKPOINTS = [
    ("missing file", ("no such checkpoint file",)),
    ("empty file", ("empty file",)),
    ("text file", ("not a PyTorch checkpoint",)),
    ("list", ("holds a list", "not a state_dict")),
    ("non-tensor entry", ("'epoch'", "not a tensor")),
    ("pickled object", ("pickled Python objects",)),
    ("missing key", ("lacks 'conv3.bias'",)),
    ("extra key", ("unexpected key 'conv6.weight'",)),
    ("wrong shape", ("'conv3.bias' has shape [5]", "[4]")),
    ("nan weight", ("'conv2.bias'", "non-finite")),
    ("bad arch", ("'arch'", "4 positive")),
]


@pytest.mark.parametrize(("name", "words"), BAD_CHECKPOINTS, ids=[n for n, _ in BAD_CHECKPOINTS])
def test_bad_segmenter_checkpoint_is_one_clear_line(
    tmp_path: Path, name: str, words: tuple[str, ...]
) -> None:
    path = _broken(tmp_path, name)
    with pytest.raises(CheckpointError) as err:
        load_segmenter(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_segmenter_checkpoint_given_as_controller(tmp_path: Path) -> None:
    path = save(tmp_path / "seg.pt", Segmenter((4, 4, 4, 4)).state_dict())
    with pytest.raises(
        CheckpointError, match=r"'conv1.weight' has shape \[4, 3, 5, 5\].*controller"
    ):
        load_controller(path)
