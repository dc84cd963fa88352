"""ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck) of He et al. 2016, with two stems.

- ``imagenet`` stem (for 224 px), the paper's: 7x7 conv 64 stride 2 + BN + ReLU, then 3x3 max-pool stride 2.
  Taps for 224 px: ``conv1`` 112x112 (stride 2), ``layer1`` 56x56 (4), ``layer2`` 28x28 (8), ``layer3``
  14x14 (16), ``layer4`` 7x7 (32). The max-pool opens ``layer1`` (as timm's feature_info reads the stem
  at its ReLU), so ``conv1`` is the stem's full-resolution map.
- ``cifar`` stem (for 32 px), the CIFAR ResNet-18 of the SSL papers (SimCLR's CIFAR-10 setting, solo-learn,
  lightly): a 3x3 conv 64 stride 1 + BN + ReLU and no max-pool, so ``conv1`` and ``layer1`` are 32x32
  and ``layer4`` is 4x4 (strides 1, 1, 2, 4, 8).

Blocks follow the reference implementation ("ResNet v1.5"): the downsampling stride sits on the 3x3 conv
(also in the Bottleneck), and a shortcut that changes shape is a 1x1 conv + BN (the paper's option B).
Convs have no bias. Init: Kaiming normal (fan-out) for convs, BN scale 1 and shift 0; ``zero_init_residual``
instead starts the last BN of every residual branch at scale 0 (Goyal et al. 2017), so each block begins as
the identity; it is off by default. ``width`` scales every channel count (0.5 → 32/64/128/256, times 4 for
the Bottleneck outputs). The classifier (global pool + fc) is not part of the backbone.
"""

from __future__ import annotations

from torch import Tensor, nn

from chromaproxy.errors import UserError
from chromaproxy.models.base import Backbone, TapInfo, kaiming_init, scaled


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity, or a strided 1x1 conv + BN where the block changes the map's shape."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(*conv_bn(in_channels, out_channels, 1, stride))


class BasicBlock(nn.Module):
    """3x3 conv, BN, ReLU, 3x3 conv, BN, plus the shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            *conv_bn(in_channels, planes, 3, stride), nn.ReLU(inplace=True), *conv_bn(planes, planes, 3)
        )
        self.shortcut = shortcut(in_channels, planes, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 conv to ``planes``, strided 3x3 conv, 1x1 conv to 4 x ``planes`` (BN after each, ReLU between),
    plus the shortcut, then ReLU."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.residual = nn.Sequential(
            *conv_bn(in_channels, planes, 1), nn.ReLU(inplace=True),
            *conv_bn(planes, planes, 3, stride), nn.ReLU(inplace=True),
            *conv_bn(planes, out_channels, 1),
        )
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


DEPTHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}
STEMS = ("cifar", "imagenet")


def stem(in_channels: int, channels: int, kind: str) -> nn.Sequential:
    """``conv1``: the 7x7 stride-2 ImageNet conv or the 3x3 stride-1 CIFAR conv, + BN + ReLU."""
    kernel, stride = (7, 2) if kind == "imagenet" else (3, 1)
    return nn.Sequential(*conv_bn(in_channels, channels, kernel, stride), nn.ReLU(inplace=True))


def residual_layer(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int, count: int,
                   stride: int) -> list[nn.Module]:
    """``count`` blocks; the first one changes the stride and channel count."""
    rest = [block(planes * block.expansion, planes, 1) for _ in range(count - 1)]
    return [block(in_channels, planes, stride), *rest]


class ResNet(Backbone):
    """ResNet-``depth`` (18, 34 or 50) with the ``stem_kind`` stem ("cifar" or "imagenet"); taps ``conv1``,
    ``layer1`` … ``layer4``."""

    def __init__(self, depth: int, in_channels: int = 3, width: float = 1.0, stem_kind: str = "cifar",
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        if depth not in DEPTHS or stem_kind not in STEMS:
            raise UserError(f"no ResNet-{depth} with a {stem_kind} stem: depths 18, 34, 50; stems cifar, imagenet")
        block, counts = DEPTHS[depth]
        imagenet = stem_kind == "imagenet"
        self.input_size = 224 if imagenet else 32
        channels, stride = scaled(64, width), 2 if imagenet else 1
        stages = {"conv1": stem(in_channels, channels, stem_kind)}
        self.feature_info = [TapInfo("conv1", channels, stride)]
        for index, count in enumerate(counts):
            name, planes, block_stride = f"layer{index + 1}", scaled(64 * 2**index, width), 1 if index == 0 else 2
            pool = [nn.MaxPool2d(3, 2, padding=1)] if imagenet and index == 0 else []
            stages[name] = nn.Sequential(*pool, *residual_layer(block, channels, planes, count, block_stride))
            channels, stride = planes * block.expansion, stride * block_stride * (2 if pool else 1)
            self.feature_info.append(TapInfo(name, channels, stride))
        self.stages = nn.ModuleDict(stages)
        kaiming_init(self)
        if zero_init_residual:
            self._zero_init_residual()

    def _zero_init_residual(self) -> None:
        """Scale 0 on the BN that closes every residual branch: each block starts as its shortcut."""
        for module in self.modules():
            if isinstance(module, (BasicBlock, Bottleneck)):
                nn.init.zeros_(module.residual[-1].weight)
