"""Mask datasets held like the image sources: one uint8 tensor per split, so augmentation runs on batches.

Photos with pixel masks come in many sizes (here up to 160 px on the long side), so each split is stored on
a square canvas of ``max_side`` pixels: the photo at its top-left corner, black beyond it, and its mask
255 (ignore) beyond it. Nothing is resized unless a side exceeds ``max_side`` (then Lanczos for the photo,
nearest neighbour for the mask, so class ids stay class ids). Padding rather than resizing keeps the
evaluation at each photo's own resolution: the canvas padding is ignored like any other 255 pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from chromaproxy.data.folder import to_rgb
from chromaproxy.errors import UserError

IGNORE = 255  # mask value of pixels that count for nothing: object boundaries, void, canvas padding


@dataclass
class MaskSet:
    """One split: ``images`` (N, 3, S, S) uint8 RGB on the canvas, ``masks`` (N, S, S) uint8 class ids with
    255 = ignore, ``sizes`` (N, 2) the (height, width) of each photo on the canvas, and the image names."""

    images: torch.Tensor
    masks: torch.Tensor
    sizes: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor) -> "MaskSet":
        return MaskSet(self.images[index], self.masks[index], self.sizes[index], [self.names[i] for i in index.tolist()])


@dataclass
class MaskSplits:
    """What a mask source returns: the train and test splits and the class names (index = class id)."""

    name: str
    train: MaskSet
    test: MaskSet
    classes: list[str]
    location: str


def image_labels(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Image-level labels from masks (N, H, W): (N, num_classes) bool, True where the class has a pixel."""
    flat = masks.reshape(len(masks), -1).long()  # (N, H*W)
    present = torch.zeros(len(masks), num_classes + 1, dtype=torch.bool)
    present.scatter_(1, flat.clamp(max=num_classes), True)  # ignore and out-of-range ids land in the extra column
    return present[:, :num_classes]


def read_pair(image_path, mask_path, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A photo (H, W, 3) uint8 and its mask (H, W) uint8, fitted inside ``max_side``; one-line errors."""
    image, mask = to_rgb(_open(image_path)), _open(mask_path)
    if mask.mode not in ("L", "P"):
        raise UserError(f"{mask_path} is a {mask.mode} image; a mask must hold class ids (PNG mode L or P)")
    if image.size != mask.size:
        raise UserError(f"{mask_path} is {mask.size[0]}x{mask.size[1]} but its image {image_path} is {image.size[0]}x{image.size[1]}")
    scale = max_side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image, mask = image.resize(size, Image.LANCZOS), mask.resize(size, Image.NEAREST)
    return np.asarray(image), np.asarray(mask)  # mode P reads as its palette indices: the class ids


def _open(path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise UserError(f"{path} is missing") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise UserError(f"{path} cannot be read as an image ({error})") from None
    return image


def on_canvas(pairs: list[tuple[np.ndarray, np.ndarray]], names: list[str], side: int) -> MaskSet:
    """Photos and masks placed at the top-left of ``side`` x ``side`` canvases (mask 255 beyond them)."""
    images = torch.zeros(len(pairs), 3, side, side, dtype=torch.uint8)
    masks = torch.full((len(pairs), side, side), IGNORE, dtype=torch.uint8)
    sizes = torch.zeros(len(pairs), 2, dtype=torch.long)
    for i, (image, mask) in enumerate(pairs):
        h, w = mask.shape
        images[i, :, :h, :w] = torch.from_numpy(image.copy()).permute(2, 0, 1)  # (3, h, w)
        masks[i, :h, :w] = torch.from_numpy(mask.copy())
        sizes[i] = torch.tensor([h, w])
    return MaskSet(images, masks, sizes, names)
