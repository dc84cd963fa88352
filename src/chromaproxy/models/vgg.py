"""VGG-16 (Simonyan & Zisserman 2015, configuration D) with BatchNorm after every conv: the network whose
hypercolumns Larsson et al. 2016 read for colorization.

Five blocks of 3x3 convs (2 x 64, 2 x 128, 3 x 256, 3 x 512, 3 x 512), each conv + BN + ReLU, 2x2
max-pools between blocks. Every conv is a tap, ``conv1_1`` … ``conv5_3`` (Larsson et al.'s hypercolumn
layers): the max-pool before a block opens that block's first stage, so each tap is its conv's
full-resolution post-ReLU map. Strides: 1 (``conv1_*``), 2, 4, 8, 16 (``conv5_*``); so 224 px gives
conv5 at 14x14 and a 32 px CIFAR image conv5 at 2x2. The final pool5 and the fully connected layers
belong to a classifier, not to the backbone.

Convs have no bias (the BN after each subtracts it; the original BN-less VGG had one). Init: Kaiming
normal (fan-out), BN scale 1 and shift 0. ``width`` scales every channel count.
"""

from __future__ import annotations

from torch import nn

from chromaproxy.models.base import Backbone, TapInfo, kaiming_init, scaled

BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))  # configuration D


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)]


class VGG16BN(Backbone):
    """VGG-16 with BN; one tap per conv, ``conv1_1`` … ``conv5_3``."""

    input_size = 224

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        stages: dict[str, nn.Sequential] = {}
        self.feature_info = []
        for block, widths in enumerate(BLOCKS):
            for layer, channels in enumerate(widths):
                pool = [nn.MaxPool2d(2)] if block > 0 and layer == 0 else []
                name, out_channels = f"conv{block + 1}_{layer + 1}", scaled(channels, width)
                stages[name] = nn.Sequential(*pool, *conv_bn_relu(in_channels, out_channels))
                self.feature_info.append(TapInfo(name, out_channels, 2**block))
                in_channels = out_channels
        self.stages = nn.ModuleDict(stages)
        kaiming_init(self)
