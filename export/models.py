"""The paper's two networks, and the wrappers that give them the contract's tensors.

``Segmenter`` and ``Controller`` are the trainable networks; checkpoints are their
state_dicts. ``SegmenterGraph`` and ``ControllerGraph`` add the fixed pre- and
post-processing INTERFACE.md puts inside the ONNX graphs (image and state
normalisation, sigmoid), so the runtime feeds camera bytes and joint angles as they are.
The conventions and their reasons are in ``defaults.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from grasprt.bundle import MASK_SIZE, MODEL_SIZE, STATE_SIZE
from grasprt.export.defaults import IMAGE_MEAN, IMAGE_STD

PAPER_WIDTHS = (16, 32, 32, 32)
KERNEL = 5


class Segmenter(nn.Module):
    """5 convolutions 5x5 with 2 poolings, dilation 2 on the 2nd and 4th: 400x400 -> 100x100.

    The paper fixes the layer count, kernel, pooling count and where the dilation goes;
    widths, pooling type (max) and padding ("same", so the poolings alone set the
    400 -> 100 reduction) are ours. ``widths`` are conv1..conv4; conv5 gives 1 channel
    of logits.
    """

    def __init__(self, widths: Sequence[int] = PAPER_WIDTHS) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or any(w < 1 for w in widths):
            raise ValueError(f"segmenter widths must be 4 positive integers, got {widths}")
        self.widths = widths
        w1, w2, w3, w4 = widths
        same, dilated_same = KERNEL // 2, 2 * (KERNEL // 2)
        self.conv1 = nn.Conv2d(3, w1, KERNEL, padding=same)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(w1, w2, KERNEL, padding=dilated_same, dilation=2)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(w2, w3, KERNEL, padding=same)
        self.conv4 = nn.Conv2d(w3, w4, KERNEL, padding=dilated_same, dilation=2)
        self.conv5 = nn.Conv2d(w4, 1, KERNEL, padding=same)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised NCHW float image -> mask logits [N, 1, 100, 100]."""
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.conv4(x))
        return self.conv5(x)

    def flops(self) -> int:
        """Multiply-adds x 2 for one 400x400 image (biases and ReLUs left out)."""
        w1, w2, w3, w4 = self.widths
        # Output pixels at each resolution: conv1 at 400, conv2 at 200, the rest at 100.
        full, half, quarter = ((MODEL_SIZE // d) ** 2 for d in (1, 2, 4))
        channel_pairs = full * 3 * w1 + half * w1 * w2 + quarter * (w2 * w3 + w3 * w4 + w4)
        macs = channel_pairs * KERNEL * KERNEL
        return 2 * macs


class Controller(nn.Module):
    """The paper's controller, layer for layer.

    Mask path: conv 16 5x5 stride 4 -> conv 32 5x5 stride 4 -> FC 128 (ReLU after each);
    state path: FC 8 -> 128 (ReLU); concatenated, FC 256 -> 128 (ReLU), FC 128 -> 8, tanh.
    Unpadded convolutions take 100 -> 24 -> 5. The state it sees is already normalised.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, KERNEL, stride=4)
        self.conv2 = nn.Conv2d(16, 32, KERNEL, stride=4)
        side = ((MASK_SIZE - KERNEL) // 4 + 1 - KERNEL) // 4 + 1
        self.fc_mask = nn.Linear(32 * side * side, 128)
        self.fc_state = nn.Linear(STATE_SIZE, 128)
        self.fc1 = nn.Linear(256, 128)
        self.fc2 = nn.Linear(128, STATE_SIZE)

    def forward(self, mask: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        m = torch.relu(self.conv1(mask))
        m = torch.relu(self.conv2(m))
        m = torch.relu(self.fc_mask(m.flatten(1)))
        s = torch.relu(self.fc_state(state))
        h = torch.relu(self.fc1(torch.cat([m, s], dim=1)))
        return torch.tanh(self.fc2(h))


class SegmenterGraph(nn.Module):
    """``image`` uint8 [N, 400, 400, 3] RGB (NHWC) -> ``mask`` float32 [N, 1, 100, 100], 0..1."""

    def __init__(self, net: Segmenter) -> None:
        super().__init__()
        self.net = net
        # Constants of the graph, not weights: kept out of the checkpoint on purpose.
        mean = torch.tensor(IMAGE_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(IMAGE_STD, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32).permute(0, 3, 1, 2) / 255.0
        x = (x - self.mean) / self.std
        return torch.sigmoid(self.net(x))


class ControllerGraph(nn.Module):
    """``mask`` [N, 1, 100, 100] + ``state`` [N, 8] (rad, gripper 0..1) -> ``action`` [N, 8]."""

    def __init__(self, net: Controller, state_offset: np.ndarray, state_scale: np.ndarray) -> None:
        super().__init__()
        offset = torch.as_tensor(np.asarray(state_offset, dtype=np.float32)).view(1, STATE_SIZE)
        scale = torch.as_tensor(np.asarray(state_scale, dtype=np.float32)).view(1, STATE_SIZE)
        if not bool(torch.all(scale > 0)):
            raise ValueError("state scales must be positive")
        self.net = net
        self.register_buffer("state_offset", offset, persistent=False)
        self.register_buffer("state_scale", scale, persistent=False)

    def forward(self, mask: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.net(mask, (state - self.state_offset) / self.state_scale)
