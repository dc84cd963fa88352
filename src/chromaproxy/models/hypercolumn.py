"""Hypercolumns (Hariharan et al. 2015; Larsson et al. 2016): the features of several taps read at the
same image location and concatenated, so a per-pixel prediction sees edges and semantics at once.

Sparse training (Larsson et al. 2016, Sec. 3.1): instead of upsampling every tap to full resolution,
only ``points`` random locations per image are read, by bilinear sampling. Locations are in the
``grid_sample`` convention (x, y in [-1, 1], align_corners=False), where pixel i of an n-pixel axis has
its centre at (2i + 1) / n - 1: the same coordinates address every tap whatever its stride.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_points(batch: int, points: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(B, P, 2) uniform locations (x, y) in [-1, 1]."""
    return torch.rand(batch, points, 2, generator=generator, device=device) * 2 - 1


def pixel_centres(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H*W, 2) locations (x, y) of every pixel centre of an H x W image, row-major."""
    ys = (2 * torch.arange(height, device=device) + 1) / height - 1
    xs = (2 * torch.arange(width, device=device) + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    return torch.stack([grid_x, grid_y], dim=-1).view(-1, 2)  # (H*W, 2)


def sample(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear read of ``maps`` (B, C, h, w) at ``points`` (B, P, 2) → (B, P, C); borders clamp."""
    grid = points.unsqueeze(1).to(maps.dtype)  # (B, 1, P, 2)
    values = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B, C, 1, P)
    return values.squeeze(2).transpose(1, 2)  # (B, P, C)


def hypercolumns(features: dict[str, torch.Tensor], points: torch.Tensor) -> torch.Tensor:
    """Concatenated samples of every tap at ``points``: (B, P, sum of channels)."""
    return torch.cat([sample(maps, points) for maps in features.values()], dim=-1)
