"""The training data of a SEC run (``tasks=[sec]``): a mask dataset's train photos with their image-level
labels and localisation cues packed below them (``segment/packing.py``), ready for the ordinary trainer.

Only image-level labels leave the masks here (``image_labels``: the classes with a pixel); the cue stage
sees those labels and the photos, never the masks. The test split is packed with its labels and no cues,
so the trainer's closing test loss is the expansion and constrain terms on unseen photos.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from chromaproxy.data.sources import resolve_root
from chromaproxy.data.types import DatasetSplits, ImageSet
from chromaproxy.errors import UserError
from chromaproxy.segment.cue_stage import cue_maps, read_micro
from chromaproxy.segment.images import dominant_labels, square_photos
from chromaproxy.segment.masks import IGNORE, MaskSet, image_labels
from chromaproxy.segment.packing import pack
from chromaproxy.segment.sources import MASK_SOURCES, load_masks

SEC_TASKS = ("sec",)  # tasks whose images carry packed cues


def trains_on_cues(cfg: Any) -> bool:
    return any(name in SEC_TASKS for name in cfg.tasks)


def check_sec_config(cfg: Any) -> None:
    """One-line errors for the settings a SEC run cannot train with."""
    if cfg.tasks != ["sec"]:
        raise UserError(f"tasks={list(cfg.tasks)}: sec trains alone (its images carry their cues); set tasks=[sec]")
    if cfg.data.name not in MASK_SOURCES:
        raise UserError(f"tasks=[sec] learns from a mask dataset's image-level labels, and data.name={cfg.data.name} "
                        f"has no masks: set data.name to one of {', '.join(MASK_SOURCES)}")
    augment = cfg.augment
    if augment.crop_padding or any(augment.color_jitter) or augment.grayscale_p:
        raise UserError("tasks=[sec] packs each photo's cues below it: set augment.crop_padding=0, "
                        "augment.color_jitter=[0,0,0,0] and augment.grayscale_p=0 (flips are fine)")


def computed_here(compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A stage run in this process: what ``once`` is outside torchrun."""
    return compute()


def sec_training_images(cfg: Any, run: Path | None, device: torch.device, progress: bool = True,
                        once: Callable[[Callable[[], torch.Tensor]], torch.Tensor] = computed_here):
    """(source, held-out test index, packed training images, warnings), as ``engine.data.training_images``.

    ``once`` runs the cue stage: under torchrun the trainer passes one that runs it on rank 0 alone and
    hands the cue maps to the other ranks, which would otherwise each train a cue network of their own."""
    check_sec_config(cfg)
    if cfg.sec.micro:
        read_micro(cfg.sec.micro)  # a missing file stops the run now, not after the cue network has trained
    splits = load_masks(cfg.data.name, resolve_root(cfg.data.root), cfg.data.path)
    classes, side = splits.classes, cfg.data.image_size
    if classes[0] != "background":
        raise UserError(f"tasks=[sec] needs class 0 to be background, but {cfg.data.name}'s class 0 is "
                        f"{classes[0]!r} (every pixel belongs to an object class): use pets3, coco200 or voc")
    if len(classes) > side:
        raise UserError(f"data.image_size={side} is smaller than the {len(classes)} classes of {cfg.data.name}; set data.image_size >= {len(classes)}")
    train, warnings = _limited(splits.train, cfg.data.limit, cfg.data.name)
    photos, labels = square_photos(train, side), present_classes(train, len(classes))
    maps = once(partial(cue_maps, cfg, photos, labels, classes, run, device, progress))
    full = ImageSet(pack(photos, maps, labels), dominant_labels(train.masks, len(classes)), classes[1:])
    test = _packed_without_cues(splits.test, classes, side)
    return DatasetSplits(cfg.data.name, full, test, splits.location), torch.zeros(0, dtype=torch.int64), full, warnings


def present_classes(images: MaskSet, num_classes: int) -> torch.Tensor:
    """(N, K) bool image-level labels; background (class 0) always counts as present (SEC's assumption)."""
    labels = image_labels(images.masks, num_classes)
    labels[:, 0] = True
    return labels


def _packed_without_cues(images: MaskSet, classes: list[str], side: int) -> ImageSet:
    photos = square_photos(images, side)
    no_cues = torch.full((len(images), side, side), IGNORE, dtype=torch.uint8)
    return ImageSet(pack(photos, no_cues, present_classes(images, len(classes))),
                    dominant_labels(images.masks, len(classes)), classes[1:])


def _limited(images: MaskSet, limit: int | None, name: str) -> tuple[MaskSet, list[str]]:
    if limit is None:
        return images, []
    if limit > len(images):
        return images, [f"data.limit={limit} is more than the {len(images)} training images of data.name={name}; all are used"]
    return images.subset(torch.arange(limit)), []
