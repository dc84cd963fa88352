"""The 13-layer ConvNet ("conv-large") of Laine & Aila 2017 (Temporal Ensembling, Table 5), as SESEMI uses it
(Tran 2019) with BatchNorm: the standard CIFAR network of the semi-supervised literature before WRN-28-2.

Every conv is conv (no bias) + BN + LeakyReLU(0.1). Block 1 is 3 x [3x3 conv 128] then max-pool 2x2; block 2
is 3 x [3x3 conv 256] then max-pool 2x2; block 3 is a *valid* (unpadded) 3x3 conv 512, 1x1 conv 256 and
1x1 conv 128. As in NIN, the pool closes its block, so for a 32x32 input the taps are ``block1`` 16x16x128
(stride 2), ``block2`` 8x8x256 (stride 4) and ``block3`` 6x6x128 (stride 4, less the valid conv's 1-pixel
border on each side), the map the paper global-average-pools into its classifier.

Left out, because they regularise the paper's supervised classifier rather than define the features: the
Gaussian input noise (sigma 0.15) and the dropout (p = 0.5) after each pool. ``width`` scales every channel
count (0.5 → 64/128/256/128/64).
"""

from __future__ import annotations

from torch import nn

from chromaproxy.models.base import Backbone, TapInfo, conv_out, kaiming_init, scaled

SLOPE = 0.1  # LeakyReLU negative slope of the paper


def conv_bn_lrelu(in_channels: int, out_channels: int, kernel: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(SLOPE, inplace=True),
    )


def same_convs(in_channels: int, channels: int, count: int) -> list[nn.Module]:
    """``count`` size-preserving 3x3 convs to ``channels``."""
    return [conv_bn_lrelu(in_channels if i == 0 else channels, channels, 3, padding=1) for i in range(count)]


class ConvNet13(Backbone):
    """Laine & Aila's conv-large; taps ``block1``, ``block2``, ``block3``."""

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        c128, c256, c512 = (scaled(n, width) for n in (128, 256, 512))
        self.stages = nn.ModuleDict({
            "block1": nn.Sequential(*same_convs(in_channels, c128, 3), nn.MaxPool2d(2)),
            "block2": nn.Sequential(*same_convs(c128, c256, 3), nn.MaxPool2d(2)),
            "block3": nn.Sequential(
                conv_bn_lrelu(c256, c512, 3, padding=0),  # valid: the map loses a 1-pixel border
                conv_bn_lrelu(c512, c256, 1, padding=0),
                conv_bn_lrelu(c256, c128, 1, padding=0),
            ),
        })
        self.feature_info = [TapInfo("block1", c128, 2), TapInfo("block2", c256, 4), TapInfo("block3", c128, 4)]
        kaiming_init(self, negative_slope=SLOPE)

    def feature_size(self, tap: str, input_size: int) -> int:
        """The pools halve (rounding down); ``block3``'s valid 3x3 conv then drops a 1-pixel border."""
        side = input_size // self.tap_info(tap).stride
        return conv_out(side, 3) if tap == "block3" else side
