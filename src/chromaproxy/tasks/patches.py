"""Square patches of a batch of images, shared by the patch-based proxy tasks (relative position, and
the jigsaw family): a centred grid of cells, crops at per-image corners, and Doersch et al.'s color
dropping against chromatic aberration (2015, Sec. 4.2): for every patch, 2 of the 3 channels are dropped
and replaced by Gaussian noise whose std is 1/100 of the kept channel's (the paper's value), centred on
0.5 gray (the paper's noise sits at the mean pixel of its mean-subtracted images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NOISE_SCALE = 0.01  # dropped-channel noise std / kept-channel std (Doersch Sec. 4.2)
NOISE_MEAN = 0.5  # dropped channels are noise around gray, the stand-in for the mean pixel


def patch_boxes(height: int, width: int, grid: int, patch: int, gap: int) -> torch.Tensor:
    """(grid², 4) long boxes (top, left, bottom, right), bottom/right exclusive, of the un-jittered cells,
    row-major; the layout is centred in the H x W image."""
    span = grid * patch + (grid - 1) * gap
    steps = torch.arange(grid) * (patch + gap)  # (grid,)
    tops = (height - span) // 2 + steps
    lefts = (width - span) // 2 + steps
    rows, cols = torch.meshgrid(tops, lefts, indexing="ij")  # (grid, grid) each
    corners = torch.stack([rows.flatten(), cols.flatten()], dim=1)  # (grid², 2)
    return torch.cat([corners, corners + patch], dim=1)  # (grid², 4)


def cut_patches(images: torch.Tensor, corners: torch.Tensor, patch: int) -> torch.Tensor:
    """Crops (B, C, P, P) of images (B, C, H, W) whose top-left corners are corners (B, 2) = (top, left)."""
    steps = torch.arange(patch, device=images.device)
    rows = (corners[:, 0, None] + steps)[:, :, None]  # (B, P, 1)
    cols = (corners[:, 1, None] + steps)[:, None, :]  # (B, 1, P)
    batch = torch.arange(images.shape[0], device=images.device)[:, None, None]  # (B, 1, 1)
    crops = images[batch, :, rows, cols]  # (B, P, P, C): advanced indices around a slice go first
    return crops.permute(0, 3, 1, 2)  # (B, C, P, P)


def drop_colors(patches: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Doersch's color dropping (Sec. 4.2) on patches (N, 3, P, P): one random channel per patch is kept,
    the other two become Gaussian noise (mean ``NOISE_MEAN``, std ``NOISE_SCALE`` x the kept channel's)."""
    count = patches.shape[0]
    keep = torch.randint(0, 3, (count,), generator=generator, device=patches.device)  # (N,)
    kept = patches[torch.arange(count, device=patches.device), keep]  # (N, P, P)
    std = kept.flatten(1).std(dim=1, correction=0)[:, None, None, None]  # (N, 1, 1, 1)
    noise = torch.randn(patches.shape, generator=generator, device=patches.device, dtype=patches.dtype)
    dropped = NOISE_MEAN + NOISE_SCALE * std * noise  # (N, 3, P, P)
    is_kept = F.one_hot(keep, 3).bool()[:, :, None, None]  # (N, 3, 1, 1)
    return torch.where(is_kept, patches, dropped)
