"""SEC's per-image targets travel inside the image, so the trainer's ordinary data path carries them.

A SEC training image is (3, 2S, S): the photo (3, S, S) above a block (3, S, S) whose channel 0 is the
localisation-cue class map (a class id where the cue network put a cue, 255 elsewhere) and whose channel
1 holds the image-level labels, row k all ones when class k is present. The trainer samples, batches,
checkpoints and flips these images like any others (``augment.crop_padding=0``: a crop would shift one
half into the other), and a horizontal flip mirrors photo and cues together while leaving the label rows
as they were, so the targets stay exactly aligned without any per-image table (the transitive task packs
its pairs the same way, ``video/pairs.py``).
"""

from __future__ import annotations

import torch

from chromaproxy.segment.masks import IGNORE


def pack(photos: torch.Tensor, cue_map: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Photos (N, 3, S, S) uint8, cue class maps (N, S, S) uint8 (255 = no cue) and image-level labels
    (N, K) bool (K <= S) → (N, 3, 2S, S) uint8."""
    n, _, side, _ = photos.shape
    if labels.shape[1] > side:
        raise ValueError(f"{labels.shape[1]} classes do not fit the label rows of a {side} px image")
    block = torch.zeros_like(photos)  # (N, 3, S, S)
    block[:, 0] = cue_map
    block[:, 1, : labels.shape[1]] = labels.to(torch.uint8)[:, :, None]  # (N, K, S): row k is class k
    return torch.cat([photos, block], dim=2)


def is_packed(rgb: torch.Tensor) -> bool:
    return rgb.shape[-2] == 2 * rgb.shape[-1]


def unpack(rgb: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packed images (B, 3, 2S, S) as floats in [0, 1] → photos (B, 3, S, S), cue maps (B, S, S) long,
    labels (B, K) bool."""
    side = rgb.shape[-1]
    block = (rgb[:, :, side:] * 255).round().long()  # (B, 3, S, S)
    labels = block[:, 1, :num_classes, 0] > 0  # (B, K)
    return rgb[:, :, :side], block[:, 0], labels


def cue_masks(cue_map: torch.Tensor, num_classes: int, size: tuple[int, int]) -> torch.Tensor:
    """Cue class maps (B, S, S) → (B, K, h, w) bool at the network's output size (nearest neighbour)."""
    small = torch.nn.functional.interpolate(cue_map[:, None].float(), size=size, mode="nearest")[:, 0].long()  # (B, h, w)
    classes = torch.arange(num_classes, device=cue_map.device)[None, :, None, None]  # (1, K, 1, 1)
    return (small[:, None] == classes) & (small[:, None] != IGNORE)
