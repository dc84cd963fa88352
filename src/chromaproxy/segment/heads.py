"""Segmentation heads on a backbone, and the network that joins them.

- ``largefov``: DeepLab-LargeFOV's classifier (Chen et al. 2015, ICLR, Sec. 4): fc6 as a 3x3 convolution
  with dilation 12 and 1024 channels, fc7 1x1 with 1024, dropout 0.5 after each, fc8 1x1 to the classes;
  the head of SEC and of the colorization segmentation transfer (Larsson et al. 2017). Here on one tap,
  with ``hidden`` channels and a dilation scaled to the small maps of CPU runs (24 x 24 at a 96 px crop
  and stride 4, where 12 would read mostly padding).
- ``hypercolumn``: every tap projected by a 1x1 convolution, upsampled to the finest tap's resolution and
  summed (the same as a 1x1 convolution on the concatenated hypercolumn, Hariharan et al. 2015, without
  ever building the wide concatenation), then ReLU and a 1x1 classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.models.base import Backbone
from chromaproxy.models.inputs import ModelInput


def largefov_head(in_channels: int, num_classes: int, hidden: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
        nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
        nn.Conv2d(hidden, num_classes, 1),
    )


class HypercolumnHead(nn.Module):
    def __init__(self, channels: dict[str, int], num_classes: int, hidden: int) -> None:
        super().__init__()
        self.project = nn.ModuleDict({tap: nn.Conv2d(c, hidden, 1) for tap, c in channels.items()})
        self.classify = nn.Sequential(nn.BatchNorm2d(hidden), nn.ReLU(inplace=True), nn.Conv2d(hidden, num_classes, 1))

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        size = max((maps.shape[-2:] for maps in features.values()), key=lambda s: s[0] * s[1])
        summed = sum(F.interpolate(self.project[tap](maps), size=size, mode="bilinear", align_corners=False)
                     for tap, maps in features.items())  # (B, hidden, h, w) at the finest tap
        return self.classify(summed)


class Segmenter(nn.Module):
    """RGB (B, 3, H, W) in [0, 1] → class scores (B, K, h, w) at the head's resolution.

    ``finetune=False`` freezes the backbone: no gradients, and its BatchNorm statistics stay as trained
    (``train()`` keeps it in eval mode), so only the head learns from frozen features.
    """

    def __init__(self, model_input: ModelInput, backbone: Backbone, head: nn.Module, taps: list[str], finetune: bool) -> None:
        super().__init__()
        self.input, self.backbone, self.head, self.taps, self.finetune = model_input, backbone, head, taps, finetune
        self.backbone.requires_grad_(finetune)

    def train(self, mode: bool = True) -> "Segmenter":
        super().train(mode)
        self.backbone.train(mode and self.finetune)
        return self

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            features = self.backbone.forward_features(self.input(rgb), self.taps)
        if isinstance(self.head, HypercolumnHead):
            return self.head(features)
        return self.head(features[self.taps[0]])
