"""Patches of the masked object in DAVIS-layout sequences (``frames/<seq>/*.jpg``, ``masks/<seq>/*.png``),
labelled by sequence (one object each in DAVIS 2016), and background patches of the same frames
(label ``UNLABELED``, up to the four corners that hold little of the object): the retrieval protocol's gallery. Without the background, colour statistics of a
scene alone would find "the same object"; with it, an embedding must tell the object from its own scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromaproxy.data.types import UNLABELED, ImageSet
from chromaproxy.errors import UserError
from chromaproxy.video.frames import FRAME_EXTENSIONS
from chromaproxy.video.tracking import crop, square_box


def object_patches(root: Path, sequences: list[str], step: int, size: int) -> ImageSet:
    """One (3, size, size) patch of the object's square bounding box every ``step`` frames, per sequence."""
    patches, labels = [], []
    for label, name in enumerate(sequences):
        for frame_path, mask_path in _frames_and_masks(root, name)[::step]:
            mask = np.asarray(Image.open(mask_path).convert("L")) > 0  # (H, W)
            if not mask.any():
                continue
            rows, columns = np.nonzero(mask)
            frame = np.asarray(Image.open(frame_path).convert("RGB"))
            x, y = columns.min(), rows.min()
            box = square_box(x, y, columns.max() - x + 1, rows.max() - y + 1, frame.shape[1], frame.shape[0])
            patches.append(crop(frame, box, size))
            labels.append(label)
            for background in background_boxes(mask, box[2]):
                patches.append(crop(frame, background, size))
                labels.append(UNLABELED)
    if not patches:
        raise UserError(f"no masked object found in {root} for sequences {sequences}")
    images = torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).contiguous()  # (N, 3, S, S)
    return ImageSet(images, torch.tensor(labels), list(sequences))


def background_boxes(mask: np.ndarray, side: int, most: float = 0.25) -> list[tuple[int, int, int, int]]:
    """The frame's corner squares of ``side`` (distinct ones) holding at most ``most`` object."""
    height, width = mask.shape
    corners = sorted({(x, y) for x in (0, width - side) for y in (0, height - side)})
    return [(x, y, side, side) for x, y in corners if mask[y : y + side, x : x + side].mean() <= most]


def _frames_and_masks(root: Path, name: str) -> list[tuple[Path, Path]]:
    frames, masks = root / "frames" / name, root / "masks" / name
    if not frames.is_dir() or not masks.is_dir():
        raise UserError(f"sequence {name!r} not found: need {frames} and {masks} (retrieval.videos, retrieval.sequences)")
    pairs = []
    for frame in sorted(f for f in frames.iterdir() if f.suffix.lower() in FRAME_EXTENSIONS):
        mask = masks / f"{frame.stem}.png"
        if mask.is_file():
            pairs.append((frame, mask))
    return pairs
