"""sRGB <-> CIE Lab (D65), the color space every colorization target is defined in.

kornia does the conversion: it takes sRGB in [0, 1] (gamma-encoded, as images are stored) and linearises it
itself, so callers must NOT linearise first. It gives L in [0, 100] and a, b in about [-110, 110] for colors
of the sRGB gamut (its docstring's [-128, 127] is the 8-bit Lab range, not what sRGB reaches).
"""

from __future__ import annotations

import kornia
import torch

AB_SCALE = 110.0  # ab targets / AB_SCALE lie in about [-1, 1]
L_CENTER = 50.0  # network input (L - L_CENTER) / L_CENTER lies in [-1, 1]


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 3, H, W) Lab with L in [0, 100]."""
    return kornia.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """(B, 3, H, W) Lab -> sRGB; ``clip`` clamps to [0, 1], since predicted ab may leave the gamut."""
    return kornia.color.lab_to_rgb(lab, clip=clip)


def split_lab(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) Lab -> L (B, 1, H, W), the network input, and ab (B, 2, H, W), the target."""
    return lab[:, :1], lab[:, 1:]


def join_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L (B, 1, H, W) and ab (B, 2, H, W) -> Lab (B, 3, H, W): how a predicted ab becomes an image again."""
    return torch.cat([L, ab], dim=1)
