"""Mask datasets as image sources (``data.name=pets3``, ``coco200``, ``camvid``, ``voc``): the photos a
classification-style run trains on and probes, and SEC's square photos with their image-level labels.

Each photo is resized to a ``side`` x ``side`` square whatever its aspect (DeepLab and SEC resize every
VOC photo to 321 x 321 the same way), so batches stay one uint8 tensor. The single label an image gets
(for kNN and the probes) is its foreground class with the most pixels (pets3: the one pet's breed);
classes are the foreground classes, so class 0 (background) is not one of them. An image with no
foreground pixel is UNLABELED. SEC reads every present class instead (``image_labels``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from chromaproxy.data.types import UNLABELED, DatasetSplits, ImageSet
from chromaproxy.segment.masks import IGNORE, MaskSet
from chromaproxy.segment.sources import load_masks


def square_photos(images: MaskSet, side: int) -> torch.Tensor:
    """(N, 3, side, side) uint8: each photo cut from its canvas and resized (bilinear, antialiased)."""
    out = torch.empty(len(images), 3, side, side, dtype=torch.uint8)
    for i, (h, w) in enumerate(images.sizes.tolist()):
        photo = images.images[i : i + 1, :, :h, :w].float()  # (1, 3, h, w)
        resized = F.interpolate(photo, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        out[i] = resized[0].round().clamp(0, 255).to(torch.uint8)
    return out


def square_masks(images: MaskSet, side: int) -> torch.Tensor:
    """(N, side, side) uint8 masks resized like ``square_photos`` (nearest neighbour: ids stay ids)."""
    out = torch.empty(len(images), side, side, dtype=torch.uint8)
    for i, (h, w) in enumerate(images.sizes.tolist()):
        mask = images.masks[i : i + 1, None, :h, :w].float()  # (1, 1, h, w)
        out[i] = F.interpolate(mask, size=(side, side), mode="nearest")[0, 0].to(torch.uint8)
    return out


def dominant_labels(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N,) the foreground class (1..K-1) with the most pixels, minus one; UNLABELED where none has any."""
    flat = masks.reshape(len(masks), -1).long()  # (N, H*W)
    flat = torch.where(flat == IGNORE, torch.full_like(flat, num_classes), flat)
    counts = torch.zeros(len(masks), num_classes + 1, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    foreground = counts[:, 1:num_classes]  # (N, K-1)
    return torch.where(foreground.sum(1) > 0, foreground.argmax(1), torch.full((len(masks),), UNLABELED))


def as_image_set(images: MaskSet, classes: list[str], side: int) -> ImageSet:
    return ImageSet(square_photos(images, side), dominant_labels(images.masks, len(classes)), classes[1:])


def mask_image_splits(name: str, root: Path, path: str | None, side: int) -> DatasetSplits:
    """The mask dataset ``name`` as an image source at ``side`` px (train and test splits)."""
    splits = load_masks(name, root, path)
    return DatasetSplits(name, as_image_set(splits.train, splits.classes, side),
                         as_image_set(splits.test, splits.classes, side), splits.location)
