"""PIC's embedding network g(L) (Royer, Kolesnikov, Lampert 2017, thesis Table 5.1): the lightness encoder
whose output map biases every gated block of the conditional PixelCNN++ over chroma.

Gated residual blocks (concat-ELU, gating a·σ(b), ``pixelcnn.layers.GatedResidual`` with plain 3x3 convs,
no BatchNorm as in the thesis), dilation 2 in the deepest blocks. CIFAR variant: conv 32 → 2 blocks →
stride-2 conv 64 → 2 blocks → conv 128 → 2 blocks → conv 256 → 3 dilated blocks, so a 32 px L gives a
16x16x256 map, the chroma grid (factor 2). The 128 px variant (``pic_embed128``) strides twice, to the
factor-4 grid. Taps ``stage1`` … ``stage4`` make g probe-able like any backbone.
"""

from __future__ import annotations

from torch import nn

from chromaproxy.models.base import Backbone, TapInfo, scaled
from chromaproxy.pixelcnn.layers import GatedStack

STAGES = ((32, 2, 1), (64, 2, 1), (128, 2, 1), (256, 3, 2))  # (channels, blocks, dilation) of Table 5.1


class PicEmbedding(Backbone):
    """g(L); ``strided`` = how many stages halve the map (1: CIFAR, 2: the 128 px variant)."""

    def __init__(self, in_channels: int = 1, width: float = 1.0, strided: int = 1) -> None:
        super().__init__()
        self.stages, self.feature_info, previous, stride = nn.ModuleDict(), [], in_channels, 1
        for index, (channels, blocks, dilation) in enumerate(STAGES):
            channels, step = scaled(channels, width), 2 if 1 <= index <= strided else 1
            stride *= step
            self.stages[f"stage{index + 1}"] = nn.Sequential(
                nn.Conv2d(previous, channels, 3, stride=step, padding=1), GatedStack(channels, blocks, dilation))
            self.feature_info.append(TapInfo(f"stage{index + 1}", channels, stride))
            previous = channels
        self.input_size = 32 if strided == 1 else 128
