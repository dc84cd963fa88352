"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016), following the official code
(``szagoruyko/wide-residual-networks``, ``pytorch/resnet.py``): WRN-28-2 is the S4L / MixMatch / FixMatch
CIFAR backbone, WRN-28-10 the paper's best CIFAR network.

A 3x3 conv to 16 channels, then 3 groups of (d - 4) / 6 pre-activation basic blocks (4 for d = 28) of
16k, 32k and 64k channels, the 2nd and 3rd group starting with stride 2, then BN + ReLU. A block is
BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3 plus the shortcut: the identity, or, where the channel count or
stride changes, a 1x1 conv of the *pre-activated* input (as the official code). Convs have no bias.

Taps: ``conv1`` (the first conv, 16 channels, stride 1; not yet normalised, as in any pre-activation net),
``layer1`` (16k, stride 1), ``layer2`` (32k, 2) and ``layer3`` (64k, 4), which includes the final BN + ReLU
so the deepest tap is the feature the classifier pools. For 32 px: 32, 32, 16 and 8 pixels.

Choices: ReLU and PyTorch's BN momentum (0.1), as the paper; FixMatch's variant uses LeakyReLU 0.1 and
BN momentum 0.001. No dropout inside blocks (the paper's optional 0.3; FixMatch uses none). Init: Kaiming
normal (fan-out), BN scale 1 and shift 0. ``width`` scales every channel count, the 16 of ``conv1`` too.
"""

from __future__ import annotations

from torch import Tensor, nn

from chromaproxy.errors import UserError
from chromaproxy.models.base import Backbone, TapInfo, kaiming_init, scaled


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """The official ``block``: o1 = relu(bn0(x)); z = conv1(relu(bn1(conv0(o1)))); z + (x or convdim(o1))."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.preact = bn_relu(in_channels)
        self.residual = nn.Sequential(
            conv3x3(in_channels, out_channels, stride), bn_relu(out_channels), conv3x3(out_channels, out_channels)
        )
        changes_shape = stride != 1 or in_channels != out_channels
        self.convdim = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if changes_shape else None

    def forward(self, x: Tensor) -> Tensor:
        activated = self.preact(x)
        return self.residual(activated) + (x if self.convdim is None else self.convdim(activated))


def group(in_channels: int, out_channels: int, count: int, stride: int) -> list[nn.Module]:
    """``count`` blocks; the first one changes the stride and channel count."""
    return [PreActBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
            for i in range(count)]


class WideResNet(Backbone):
    """WRN-``depth``-``widen_factor``; taps ``conv1``, ``layer1``, ``layer2``, ``layer3``."""

    def __init__(self, depth: int = 28, widen_factor: int = 2, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise UserError(f"WRN depth {depth} is not 6n + 4 (10, 16, 22, 28, 40, …)")
        count = (depth - 4) // 6
        c16, c1, c2, c3 = (scaled(n, width) for n in (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor))
        self.stages = nn.ModuleDict({
            "conv1": conv3x3(in_channels, c16),
            "layer1": nn.Sequential(*group(c16, c1, count, 1)),
            "layer2": nn.Sequential(*group(c1, c2, count, 2)),
            "layer3": nn.Sequential(*group(c2, c3, count, 2), bn_relu(c3)),
        })
        self.feature_info = [TapInfo("conv1", c16, 1), TapInfo("layer1", c1, 1), TapInfo("layer2", c2, 2),
                             TapInfo("layer3", c3, 4)]
        kaiming_init(self)
