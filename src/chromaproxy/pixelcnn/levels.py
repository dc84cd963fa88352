"""The discrete values a PixelCNN's output distributions live on: ``levels`` equally spaced points of
[-1, 1] (256 for 8-bit data, 16 for the Grayscale PixelCNN's 4-bit gray). Shared by the logistic mixture and
the categorical output, so both quantise and index values the same way."""

from __future__ import annotations

import torch


class Levels:
    def __init__(self, levels: int) -> None:
        self.levels = levels
        self.half_bin = 1.0 / (levels - 1)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Values in [-1, 1] (clamped) → the nearest level's value."""
        return self.value(self.index(x), x.dtype)

    def index(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.clamp(-1, 1) + 1) / (2 * self.half_bin)).round().long()

    def value(self, index: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Level indices → values; in ``dtype`` so that neighbouring bins' edges coincide exactly."""
        return index.to(dtype) * (2 * self.half_bin) - 1


def to_values(indices: torch.Tensor, levels: int) -> torch.Tensor:
    """Level indices 0..levels-1 → float32 values in [-1, 1], the PixelCNN's input scale."""
    return Levels(levels).value(indices)
