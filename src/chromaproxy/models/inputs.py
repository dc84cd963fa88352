"""``model.input``: what the backbone sees, made on the device from RGB in [0, 1].

- ``rgb``: per-channel standardisation (RotNet's CIFAR-10 statistics by default).
- ``L``: CIELAB lightness (sRGB, D65) as (L - 50) / 50, so black is -1 and white 1; the input of every
  colorization backbone, and therefore what such a backbone must be fed when it is probed later.
- ``sobel``: horizontal and vertical Sobel gradients of the gray (ITU-R 601 luma) image, as in IIC and
  DeepCluster: colour and absolute brightness are gone, so clustering cannot latch onto them.
"""

from __future__ import annotations

import kornia
import torch
from torch import nn

from chromaproxy.errors import UserError

INPUTS = ("rgb", "L", "sobel")
_CHANNELS = {"rgb": 3, "L": 1, "sobel": 2}
# Std of the normalized-kernel Sobel responses (kernel / 8, so a ramp of slope 1 per pixel gives 1) of gray
# CIFAR-10 images in [0, 1]: 0.0665, measured on the first 5,000 training images. Dividing by it gives the
# first layer an input of about unit std, like ``rgb``. Larger, smoother photos have smaller gradients.
SOBEL_STD = 0.0665


def input_channels(kind: str) -> int:
    """Input channels of the backbone for ``model.input=kind``."""
    if kind not in _CHANNELS:
        raise UserError(f"model.input={kind!r} is unknown; choose one of: {', '.join(INPUTS)}")
    return _CHANNELS[kind]


class ModelInput(nn.Module):
    """RGB (B, 3, H, W) in [0, 1] → the backbone's input (B, C, H, W). No parameters.

    mean and std (for ``rgb``) are the dataset's own (``data.sources.Source.normalisation``); they are
    non-persistent buffers: they follow ``.to(device)`` but stay out of checkpoints, since they are rebuilt
    from the config.
    """

    def __init__(
        self, kind: str, mean: tuple[float, float, float], std: tuple[float, float, float]
    ) -> None:
        super().__init__()
        self.channels = input_channels(kind)
        self.kind = kind
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values (R, G, B), got {mean} and {std}")
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.kind == "rgb":
            return (rgb - self.mean) / self.std
        if self.kind == "L":
            return scaled_lightness(rgb)
        return sobel(rgb)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, channels={self.channels}"


def scaled_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] → (B, 1, H, W) CIELAB L rescaled from [0, 100] to [-1, 1]."""
    L = kornia.color.rgb_to_lab(rgb.float())[:, :1]  # (B, 1, H, W)
    return (L - 50.0) / 50.0


def sobel(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] → (B, 2, H, W): d/dx and d/dy of the luma, divided by ``SOBEL_STD``.

    Borders are replicated, so a flat image has zero gradient everywhere, edges included.
    """
    gray = kornia.color.rgb_to_grayscale(rgb.float())  # (B, 1, H, W)
    gradients = kornia.filters.spatial_gradient(gray, mode="sobel", normalized=True)  # (B, 1, 2, H, W)
    return gradients.flatten(1, 2) / SOBEL_STD  # (B, 2, H, W)
