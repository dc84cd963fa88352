"""Hue/chroma histogram targets of Larsson, Maire, Shakhnarovich 2016/2017.

Hue is the HSV hue in [0, 1) (a turn), chroma = max - min of RGB in [0, 1]. Each gets a 32-bin histogram
target; the hue loss is weighted by chroma, since hue is meaningless for gray pixels.
"""

from __future__ import annotations

import kornia
import torch

from chromaproxy.color.lab import rgb_to_lab

HUE_WEIGHT_SCALE = 5.0  # Larsson's ECCV code multiplies the chroma weight of the hue loss by 5


def hue_chroma(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) sRGB in [0, 1] -> hue (B, H, W) in [0, 1) and chroma (B, H, W) in [0, 1]; gray has hue 0."""
    top, argmax = rgb.max(dim=1)  # (B, H, W)
    chroma = top - rgb.min(dim=1).values
    r, g, b = rgb.unbind(dim=1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    # Hue sextant from the largest channel: red 0, green 2, blue 4, plus the signed difference of the others.
    sextants = torch.stack([(g - b) / safe, (b - r) / safe + 2, (r - g) / safe + 4])  # (3, B, H, W)
    hue = sextants.gather(0, argmax.unsqueeze(0)).squeeze(0) / 6 % 1.0
    hue = torch.where(hue >= 1.0, hue - 1.0, hue)  # a tiny negative wraps to exactly 1.0 in float32
    return torch.where(chroma > 0, hue, torch.zeros_like(hue)), chroma


def histogram_target(values: torch.Tensor, bins: int = 32, soft: bool = False, circular: bool = False) -> torch.Tensor:
    """(B, H, W) values in [0, 1] -> (B, bins, H, W) histogram target summing to 1 per pixel.

    Hard: one-hot at the bin holding the value. Soft: split linearly between the two nearest bin centers
    ((i + 0.5) / bins). ``circular`` (for hue) joins bin bins-1 to bin 0, so hue near 1 is near hue 0.
    """
    if soft:
        position = values * bins - 0.5  # in bin-center units
        low = position.floor()
        frac = position - low
        index = torch.stack([low, low + 1]).long()  # (2, B, H, W)
        weight = torch.stack([1 - frac, frac])  # (2, B, H, W)
    else:
        index = (values * bins).floor().long().unsqueeze(0)  # (1, B, H, W)
        weight = torch.ones_like(index, dtype=values.dtype)
    index = index % bins if circular else index.clamp(0, bins - 1)
    target = values.new_zeros(bins, *values.shape).scatter_add_(0, index, weight)  # (bins, B, H, W)
    return target.transpose(0, 1)  # (B, bins, H, W)


def hue_weight(chroma: torch.Tensor, scale: float = HUE_WEIGHT_SCALE) -> torch.Tensor:
    """Per-pixel weight of the hue loss: ``scale`` * chroma, so gray pixels (undefined hue) count for nothing."""
    return scale * chroma


def chroma_weight(L01: torch.Tensor) -> torch.Tensor:
    """Per-pixel weight of the chroma loss, min(1, 3L, 3(1-L)) with L in [0, 1]: near black or white the
    chroma is pinned near 0 whatever the content, so those pixels teach little."""
    return torch.minimum(3 * L01, 3 * (1 - L01)).clamp(0.0, 1.0)


def hue_chroma_to_ab(hue: torch.Tensor, chroma: torch.Tensor, L: torch.Tensor, steps: int = 24) -> torch.Tensor:
    """ab of the RGB colour with this HSV hue and chroma (max - min) whose Lab lightness is L: the decoding
    of a hue/chroma prediction. RGB = m + chroma * f(hue), with f the pure-hue vector (max 1, min 0); L
    grows with the offset m, so m in [0, 1 - chroma] is found by bisection. hue, chroma (B, H, W) in
    [0, 1]; L (B, 1, H, W) → ab (B, 2, H, W)."""
    pure = kornia.color.hsv_to_rgb(torch.stack([hue * 2 * torch.pi, torch.ones_like(hue), torch.ones_like(hue)], 1))
    base = chroma.unsqueeze(1) * pure  # (B, 3, H, W) with min 0 and max chroma
    low, high = torch.zeros_like(L), (1 - chroma).unsqueeze(1)
    for _ in range(steps):
        middle = (low + high) / 2
        too_dark = rgb_to_lab(base + middle)[:, :1] < L
        low, high = torch.where(too_dark, middle, low), torch.where(too_dark, high, middle)
    return rgb_to_lab(base + (low + high) / 2)[:, 1:]
