"""Joint image/mask augmentation on batches: random scale, crop and horizontal flip, identical for a photo
and its mask (DeepLab's training augmentation).

One sampling grid per image serves both: the photo is read bilinearly, the mask by nearest neighbour (class
ids must not blend). ``grid_sample`` does the whole batch at once on the device, with no per-image Python
work beyond drawing the parameters. Pixels of the crop that fall outside the photo are black in the image
and 255 (ignore) in the mask, so they never count in a loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chromaproxy.segment.masks import IGNORE


def crop_grid(sizes: torch.Tensor, canvas: int, crop: int, scales: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """(B, crop, crop, 2) ``grid_sample`` locations (align_corners=False) on a ``canvas``-side image.

    ``sizes`` (B, 2) are the photos' (height, width) at the canvas' top-left. Each photo is scaled by
    s ~ U(scales), then a random crop x crop window of the scaled photo is taken (when the scaled photo is
    smaller than the crop, the photo lands at a random place inside the window), flipped with probability 1/2.
    """
    device, batch = sizes.device, len(sizes)
    s = torch.empty(batch, device=device).uniform_(*scales, generator=generator)  # (B,)
    extent = sizes.float() * s[:, None]  # (B, 2) scaled (h, w)
    low, high = torch.minimum(extent - crop, torch.zeros_like(extent)), torch.clamp(extent - crop, min=0)
    offset = low + torch.rand(batch, 2, generator=generator, device=device) * (high - low)  # (B, 2) in scaled pixels
    flip = torch.rand(batch, generator=generator, device=device) < 0.5
    u = torch.arange(crop, device=device).float() + 0.5  # (crop,) output pixel centres
    u_x = torch.where(flip[:, None], crop - u, u)  # (B, crop)
    y = (offset[:, :1] + u) / s[:, None]  # (B, crop) source pixel coordinates (edges at integers)
    x = (offset[:, 1:] + u_x) / s[:, None]
    grid_y, grid_x = (2 * y / canvas - 1)[:, :, None].expand(-1, -1, crop), (2 * x / canvas - 1)[:, None, :].expand(-1, crop, -1)
    return torch.stack([grid_x, grid_y], dim=-1)  # (B, crop, crop, 2)


def apply_grid(rgb: torch.Tensor, masks: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (B, 3, S, S) float and masks (B, S, S) uint8 read at ``grid`` → (B, 3, c, c) and (B, c, c) long."""
    image = F.grid_sample(rgb, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    shifted = (masks.float() + 1).unsqueeze(1)  # (B, 1, S, S): 0 is left for "outside the canvas"
    read = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False).squeeze(1).long()
    return image, torch.where(read == 0, torch.full_like(read, IGNORE), read - 1)


def joint_augment(rgb: torch.Tensor, masks: torch.Tensor, sizes: torch.Tensor, crop: int,
                  scales: tuple[float, float], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scale / crop / flip of photos (B, 3, S, S) in [0, 1] and their masks (B, S, S), identically."""
    grid = crop_grid(sizes.to(rgb.device), rgb.shape[-1], crop, scales, generator)
    return apply_grid(rgb, masks, grid)
