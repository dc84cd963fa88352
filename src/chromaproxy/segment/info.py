"""What ``chromaproxy data info`` shows for a mask dataset: per class, the images holding it and its pixels,
per split, plus the share of ignored pixels (counted inside the photos, not on the canvas padding)."""

from __future__ import annotations

import torch

from chromaproxy.segment.masks import IGNORE, MaskSet, MaskSplits, image_labels


def inside_photos(images: MaskSet) -> torch.Tensor:
    """(N, S, S) bool: True on each photo's own pixels, False on the canvas padding."""
    side = images.masks.shape[-1]
    rows = torch.arange(side)[None, :, None] < images.sizes[:, 0, None, None]  # (N, S, 1)
    columns = torch.arange(side)[None, None, :] < images.sizes[:, 1, None, None]  # (N, 1, S)
    return rows & columns


def class_statistics(images: MaskSet, num_classes: int) -> dict[str, list[int] | int]:
    """Per class: images holding it and its pixels; and the ignored pixels inside the photos."""
    masks = images.masks.long()
    pixels = torch.bincount(masks[masks != IGNORE], minlength=num_classes)[:num_classes]
    ignored = int(((images.masks == IGNORE) & inside_photos(images)).sum())
    return {"images": image_labels(images.masks, num_classes).sum(0).tolist(), "pixels": pixels.tolist(),
            "ignored": ignored, "photo_pixels": int(images.sizes.prod(1).sum())}


def mask_report(splits: MaskSplits) -> dict[str, dict]:
    """``class_statistics`` of every split, keyed by split."""
    return {split: class_statistics(getattr(splits, split), len(splits.classes)) for split in ("train", "test")}
