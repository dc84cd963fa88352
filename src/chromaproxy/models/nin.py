"""Network-in-Network as RotNet uses it on CIFAR-10 (Gidaris et al. 2018; REFERENCE.md).

Follows the official ``architectures/NetworkInNetwork.py`` with ``use_avg_on_conv3=False`` (the setting of
``config/CIFAR10_RotNet_NIN4blocks.py``): every conv is conv (no bias) + BN + ReLU; block 1 is 5x5→192,
1x1→160, 1x1→96 then max-pool(3, 2, 1); block 2 is 5x5→192, 1x1→192, 1x1→192 then avg-pool(3, 2, 1);
blocks 3+ are 3x3→192, 1x1→192, 1x1→192 with no pooling. The pooling closes its block, as in the official
code, so for a 32x32 input the taps are 16x16 (``block1``) and 8x8 (``block2`` and deeper). Tap
``blockK`` is the official ``convK`` feature. ``width`` scales every channel count (0.5 → 96/80/48), so
NIN-4 at width 0.5 trains on a CPU and width 1 is the paper's network.
"""

from __future__ import annotations

from torch import nn

from chromaproxy.errors import UserError
from chromaproxy.models.base import Backbone, TapInfo, kaiming_init, scaled

BLOCKS = (3, 4, 5)


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """RotNet's ``BasicBlock``: a size-preserving conv without bias, BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def nin_block(in_channels: int, channels: list[int], kernel: int) -> nn.Sequential:
    """One NIN block: a ``kernel`` x ``kernel`` conv followed by two 1x1 convs (the "micro network")."""
    layers = []
    for index, out_channels in enumerate(channels):
        layers.append(conv_bn_relu(in_channels, out_channels, kernel if index == 0 else 1))
        in_channels = out_channels
    return nn.Sequential(*layers)


class NIN(Backbone):
    """RotNet's CIFAR NIN with ``blocks`` blocks; taps ``block1`` … ``block<blocks>``."""

    def __init__(self, in_channels: int = 3, blocks: int = 4, width: float = 1.0) -> None:
        super().__init__()
        if blocks not in BLOCKS:
            raise UserError(f"model.blocks={blocks} is not a RotNet NIN variant; use 3, 4 or 5")
        c192, c160, c96 = (scaled(n, width) for n in (192, 160, 96))
        stages = {
            "block1": nn.Sequential(nin_block(in_channels, [c192, c160, c96], 5), nn.MaxPool2d(3, 2, 1)),
            "block2": nn.Sequential(nin_block(c96, [c192, c192, c192], 5), nn.AvgPool2d(3, 2, 1)),
        }
        for k in range(3, blocks + 1):
            stages[f"block{k}"] = nin_block(c192, [c192, c192, c192], 3)
        self.stages = nn.ModuleDict(stages)
        self.feature_info = [TapInfo("block1", c96, 2)] + [TapInfo(f"block{k}", c192, 4) for k in range(2, blocks + 1)]
        kaiming_init(self)  # RotNet's init: N(0, 2 / (k·k·out)), fan-out
