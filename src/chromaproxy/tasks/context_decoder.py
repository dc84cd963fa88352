"""The context encoder's decoder (Pathak et al. 2016, Sec. 3.1), shrunk to CIFAR scale: the deepest tap
pooled to a fixed 4x4 grid, the channel-wise fully connected layer and a 1x1 convolution, then
up-convolutions to at least the target side, a sigmoid for RGB in [0, 1], and a bilinear resize to
exactly that side.
"""

from __future__ import annotations

import math

import torch
from torch import nn

GRID = 4  # side of the pooled grid the decoder starts from


class ChannelwiseFC(nn.Module):
    """Pathak's channel-wise fully connected layer (Sec. 3.1): every channel's s x s map is fully connected
    to itself (no cross-channel parameters), so each output location sees the whole feature map."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        cells = side * side
        self.weight = nn.Parameter(torch.randn(channels, cells, cells) / math.sqrt(cells))
        self.bias = nn.Parameter(torch.zeros(channels, cells))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        flat = x.flatten(2)  # (N, C, s·s)
        out = torch.einsum("nci,cij->ncj", flat, self.weight) + self.bias  # (N, C, s·s)
        return out.view(batch, channels, height, width)  # (N, C, s, s)


def upconv(in_channels: int, out_channels: int) -> list[nn.Module]:
    """One decoder stage (Pathak Sec. 3.1): 4x4 up-convolution, stride 2 (doubles the side), BN, ReLU."""
    return [
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def context_decoder(channels: int, side: int) -> nn.Sequential:
    """Decoder from a tap with ``channels`` channels to an RGB (N, 3, side, side) reconstruction in [0, 1]."""
    stages = max(1, math.ceil(math.log2(side / GRID)))
    widths = [channels] + [max(channels // 2 ** (i + 1), 8) for i in range(stages)]
    blocks: list[nn.Module] = [
        nn.AdaptiveAvgPool2d(GRID),  # (N, C, 4, 4)
        ChannelwiseFC(channels, GRID),  # (N, C, 4, 4)
        nn.Conv2d(channels, channels, 1),  # mixes channels after the channel-wise layer
        nn.ReLU(inplace=True),
    ]
    for c_in, c_out in zip(widths, widths[1:]):
        blocks += upconv(c_in, c_out)  # side doubles: (N, c_out, 4·2^k, 4·2^k)
    blocks += [
        nn.Conv2d(widths[-1], 3, 3, padding=1),  # (N, 3, 4·2^stages, 4·2^stages)
        nn.Upsample(size=(side, side), mode="bilinear", align_corners=False),  # (N, 3, side, side)
        nn.Sigmoid(),
    ]
    return nn.Sequential(*blocks)
