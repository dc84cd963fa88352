"""Crop-and-resize of a whole batch as one ``grid_sample``: IIC's views and the random resized crop.

Each image has its own square crop (side and top-left corner), resampled bilinearly to a common output
size; one sampling grid per image replaces a Python loop of slices and ``F.interpolate`` calls, so the
crops are made on the device. The random resized crop (``augment.crop_scale``) is the scale augmentation
of most representation-learning recipes, kept square here: CIFAR's objects fill the frame, and a square
crop resized to a square input changes no aspect ratio the colour targets could notice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_resize(rgb: torch.Tensor, corners: torch.Tensor, crop: int | torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Crop each image (B, C, H, W) to a ``crop`` x ``crop`` square (one side for all, or (B,) sides) at its
    top-left ``corners`` (B, 2) = (y, x) and resize it bilinearly to ``size`` x ``size`` (default H x W):
    the same as a per-image slice then ``F.interpolate`` (half-pixel centres, edges clamped to the crop)."""
    _, _, height, width = rgb.shape
    out_h, out_w = (size, size) if size else (height, width)
    sides = torch.as_tensor(crop, device=rgb.device).expand(rgb.shape[0])  # (B,)
    y = _sample_positions(out_h, sides, corners[:, 0], height)  # (B, out_h) normalised
    x = _sample_positions(out_w, sides, corners[:, 1], width)  # (B, out_w)
    grid = torch.stack(torch.broadcast_tensors(x[:, None, :], y[:, :, None]), dim=-1)  # (B, out_h, out_w, 2) as (x, y)
    return F.grid_sample(rgb, grid.to(rgb.dtype), mode="bilinear", align_corners=False)


def _sample_positions(out: int, sides: torch.Tensor, start: torch.Tensor, side: int) -> torch.Tensor:
    """Where each of ``out`` output pixels samples a crop of ``sides`` (B,) starting at ``start`` (B,), in
    grid_sample's normalised coordinates of an image ``side`` pixels wide: (B, out)."""
    sides = sides.float()[:, None]  # (B, 1)
    inside = (torch.arange(out, device=start.device) + 0.5) * sides / out - 0.5  # (B, out) in the crop
    inside = torch.minimum(inside.clamp(min=0), sides - 1)
    pixel = start.float()[:, None] + inside  # (B, out) absolute pixel centres
    return (2 * pixel + 1) / side - 1


def random_resized_crop(rgb: torch.Tensor, scale: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Each image (B, C, H, W), H = W, replaced by a random square crop covering a share of its area drawn
    from U(``scale``), at a uniform position, resized back to H x W."""
    batch, _, height, width = rgb.shape
    low, high = scale
    area = low + (high - low) * torch.rand(batch, generator=generator, device=rgb.device)  # (B,)
    sides = (area.sqrt() * min(height, width)).round().clamp(min=1).long()  # (B,)
    y = (torch.rand(batch, generator=generator, device=rgb.device) * (height - sides + 1)).long()
    x = (torch.rand(batch, generator=generator, device=rgb.device) * (width - sides + 1)).long()
    return crop_resize(rgb, torch.stack([y, x], dim=1), sides)
