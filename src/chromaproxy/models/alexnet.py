"""AlexNet (Krizhevsky et al. 2012) with BN after every conv, as RotNet (Gidaris et al. 2018) and most SSL
AlexNets use it, at two scales. Channels are the paper's single-tower counts 96/256/384/384/256; every
conv is conv (no bias) + BN + ReLU.

- ``imagenet`` (224 px): conv1 11x11 stride 4 (padding 2), max-pool 3/2, conv2 5x5, max-pool 3/2, conv3,
  conv4, conv5 3x3. Taps ``conv1`` 55x55, ``conv2`` 27x27, ``conv3`` … ``conv5`` 13x13 (Krizhevsky's
  sizes); the nominal strides 4, 8, 16 overstate the maps by the borders the unpadded pools and the 11x11
  conv trim, so ``feature_size`` gives the exact side from the conv arithmetic.
- ``cifar`` (32 px), our adaptation: conv1 5x5 stride 1 (padding 2) and max-pools 3/2 padded by 1, so each
  pool halves the map exactly: ``conv1`` 32x32, ``conv2`` 16x16, ``conv3`` … ``conv5`` 8x8 (strides 1, 2,
  4). A stride-4 or stride-2 conv1 would leave conv5 at 2x2 or 4x4, too small for per-tap probes.

As in RotNet's ``AlexNet.py``, tap ``convK`` is the post-ReLU map before any pool: the pool before conv2
and conv3 opens that stage, and pool5 (the third max-pool) belongs to the classifier, not to the
backbone. Init: Kaiming normal (fan-out), BN scale 1 and shift 0. ``width`` scales every channel count.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from chromaproxy.errors import UserError
from chromaproxy.models.base import Backbone, TapInfo, conv_out, kaiming_init, scaled

CHANNELS = (96, 256, 384, 384, 256)


@dataclass(frozen=True)
class Scale:
    input_size: int
    conv1: tuple[int, int, int]  # kernel, stride, padding
    pool: tuple[int, int, int]  # kernel, stride, padding of the max-pools that open conv2 and conv3


SCALES = {
    "cifar": Scale(32, conv1=(5, 1, 2), pool=(3, 2, 1)),
    "imagenet": Scale(224, conv1=(11, 4, 2), pool=(3, 2, 0)),
}


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int | None = None
                 ) -> list[nn.Module]:
    """A conv ('same' padding unless given) without bias, BN, ReLU."""
    padding = kernel // 2 if padding is None else padding
    return [nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True)]


class AlexNet(Backbone):
    """AlexNet-BN at ``scale`` "cifar" or "imagenet"; taps ``conv1`` … ``conv5``."""

    def __init__(self, in_channels: int = 3, width: float = 1.0, scale: str = "cifar") -> None:
        super().__init__()
        if scale not in SCALES:
            raise UserError(f"AlexNet scale {scale!r} is not one of: {', '.join(SCALES)}")
        self.scale = SCALES[scale]
        self.input_size = self.scale.input_size
        c1, c2, c3, c4, c5 = (scaled(n, width) for n in CHANNELS)
        kernel, stride, padding = self.scale.conv1
        self.stages = nn.ModuleDict({
            "conv1": nn.Sequential(*conv_bn_relu(in_channels, c1, kernel, stride, padding)),
            "conv2": nn.Sequential(nn.MaxPool2d(*self.scale.pool), *conv_bn_relu(c1, c2, 5)),
            "conv3": nn.Sequential(nn.MaxPool2d(*self.scale.pool), *conv_bn_relu(c2, c3, 3)),
            "conv4": nn.Sequential(*conv_bn_relu(c3, c4, 3)),
            "conv5": nn.Sequential(*conv_bn_relu(c4, c5, 3)),
        })
        strides = (stride, 2 * stride, 4 * stride, 4 * stride, 4 * stride)  # the pools before conv2 and conv3
        self.feature_info = [TapInfo(name, c, s) for name, c, s in zip(self.stages, (c1, c2, c3, c4, c5), strides)]
        kaiming_init(self)

    def feature_size(self, tap: str, input_size: int) -> int:
        """conv1's output side, then one max-pool before conv2 and another before conv3 (the other convs
        keep the size)."""
        pools = min(self.feature_info.index(self.tap_info(tap)), 2)
        side = conv_out(input_size, *self.scale.conv1)
        for _ in range(pools):
            side = conv_out(side, *self.scale.pool)
        return side
