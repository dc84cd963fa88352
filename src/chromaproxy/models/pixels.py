"""The identity backbone: its one tap, ``pixels``, is the model input itself.

Two uses: the image-modelling tasks (PixelCNN, Grayscale and Pyramid PixelCNN), which own every network
they train and read no features, run on it (a real backbone would sit untrained in their checkpoints);
and any probe on it measures raw pixels, the floor a learned representation must beat.
"""

from __future__ import annotations

from torch import nn

from chromaproxy.models.base import Backbone, TapInfo


class Pixels(Backbone):
    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stages = nn.ModuleDict({"pixels": nn.Identity()})
        self.feature_info = [TapInfo("pixels", in_channels, 1)]
