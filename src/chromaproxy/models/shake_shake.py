"""Shake-Shake ResNet (Gastaldi 2017), the "Shake-WRN" of the Color-S4L tables: Shake-Shake-26 2x96d.

A 3x3 conv to 16 channels + BN, then 3 stages of 4 residual blocks of 96k, 192k and 384k channels (k =
``width``; "2x96d" = two branches, 96 channels in the first stage), the 2nd and 3rd stage starting with
stride 2, then ReLU; 26 = 1 + 3 x 4 x 2 convs + the classifier. A block has two branches, each
ReLU-conv3x3(stride)-BN-ReLU-conv3x3-BN, mixed as ``alpha * b1 + (1 - alpha) * b2`` in the forward pass
and ``beta * g, (1 - beta) * g`` in the backward pass, with alpha and beta drawn independently per image
from U(0, 1) ("Shake-Shake-Image"); at evaluation both are 0.5. Where the shape changes, the shortcut
is the paper's: ReLU, then two 1x1 convs of half the channels, one on the input and one on the input
shifted by a pixel, each after a strided 1x1 average pool, concatenated, then BN.

The draws come from the global torch RNG, which the trainer saves in every checkpoint, so a resumed run
replays the same alphas and betas. Taps: ``conv1`` (16k, stride 1), ``layer1`` (96k, 1), ``layer2``
(192k, 2) and ``layer3`` (384k, 4, after the final ReLU: the map the classifier pools).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaproxy.models.base import Backbone, TapInfo, kaiming_init, scaled

BLOCKS_PER_STAGE = 4  # Shake-Shake-26


class ShakeShake(torch.autograd.Function):
    """alpha * a + (1 - alpha) * b forward; the gradient split by an independent beta backward."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, alpha: Tensor) -> Tensor:
        return alpha * a + (1 - alpha) * b

    @staticmethod
    def backward(ctx, grad: Tensor):
        beta = torch.rand(grad.shape[0], 1, 1, 1, device=grad.device, dtype=grad.dtype)  # (B, 1, 1, 1)
        return beta * grad, (1 - beta) * grad, None


def shake(a: Tensor, b: Tensor, training: bool) -> Tensor:
    if not training:
        return 0.5 * (a + b)
    alpha = torch.rand(a.shape[0], 1, 1, 1, device=a.device, dtype=a.dtype)  # (B, 1, 1, 1)
    return ShakeShake.apply(a, b, alpha)


def branch(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class ShiftedShortcut(nn.Module):
    """The paper's shortcut where the shape changes: two half-width 1x1 convs, the second on the input
    shifted by one pixel, so that together the strided paths see every position."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.path1 = nn.Conv2d(in_channels, out_channels // 2, 1, bias=False)
        self.path2 = nn.Conv2d(in_channels, out_channels - out_channels // 2, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        first = self.path1(F.avg_pool2d(x, 1, self.stride))
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # one pixel up and left, zero at the far border
        second = self.path2(F.avg_pool2d(shifted, 1, self.stride))
        return self.norm(torch.cat([first, second], dim=1))


class ShakeBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.branch1 = branch(in_channels, out_channels, stride)
        self.branch2 = branch(in_channels, out_channels, stride)
        changes_shape = stride != 1 or in_channels != out_channels
        self.shortcut = ShiftedShortcut(in_channels, out_channels, stride) if changes_shape else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + shake(self.branch1(x), self.branch2(x), self.training)


def stage(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [ShakeBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
            for i in range(BLOCKS_PER_STAGE)]


class ShakeShakeResNet(Backbone):
    """Shake-Shake-26 2x``base``d; taps ``conv1``, ``layer1``, ``layer2``, ``layer3``."""

    def __init__(self, base: int = 96, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        c16, c1, c2, c3 = (scaled(n, width) for n in (16, base, 2 * base, 4 * base))
        self.stages = nn.ModuleDict({
            "conv1": nn.Sequential(nn.Conv2d(in_channels, c16, 3, padding=1, bias=False), nn.BatchNorm2d(c16)),
            "layer1": nn.Sequential(*stage(c16, c1, 1)),
            "layer2": nn.Sequential(*stage(c1, c2, 2)),
            "layer3": nn.Sequential(*stage(c2, c3, 2), nn.ReLU()),
        })
        self.feature_info = [TapInfo("conv1", c16, 1), TapInfo("layer1", c1, 1), TapInfo("layer2", c2, 2),
                             TapInfo("layer3", c3, 4)]
        kaiming_init(self)
