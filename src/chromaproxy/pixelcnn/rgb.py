"""PixelCNN++ over 8-bit RGB, the factor every image model is built from, at a given ``Stack`` size: the
single-resolution network (``network.ConditionalPixelCNN``, cached sampling) or, with ``scales`` > 1,
PixelCNN++'s U-Net (``multiscale.MultiScalePixelCNN``, sampled a full pass per pixel)."""

from __future__ import annotations

from dataclasses import dataclass

from chromaproxy.pixelcnn.mixture import LogisticMixture
from chromaproxy.pixelcnn.multiscale import MultiScalePixelCNN
from chromaproxy.pixelcnn.network import ConditionalPixelCNN, MixturePixelCNN

RGB_LEVELS = 256


@dataclass(frozen=True)
class Stack:
    """A PixelCNN's size: filters, gated blocks per stack (per resolution when ``scales`` > 1), mixture
    components, dropout, and the resolutions of its U-Net (1: no down- and upsampling)."""

    filters: int = 160
    blocks: int = 4
    components: int = 10
    dropout: float = 0.5
    scales: int = 1


def rgb_pixelcnn(stack: Stack, cond_channels: int = 0) -> MixturePixelCNN:
    """PixelCNN++ over RGB: a logistic mixture per pixel, G's mean linear in R, B's in R and G."""
    mixture = LogisticMixture(3, stack.components, RGB_LEVELS)
    if stack.scales > 1:
        return MultiScalePixelCNN(mixture, stack.filters, stack.blocks, stack.scales, cond_channels, stack.dropout)
    return ConditionalPixelCNN(mixture, stack.filters, stack.blocks, cond_channels, stack.dropout)
