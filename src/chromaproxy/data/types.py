"""The in-memory form every dataset source produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

UNLABELED = -1


@dataclass
class ImageSet:
    """One split of a dataset held as a single uint8 tensor.

    ``images`` is (N, 3, H, W) uint8 RGB; ``labels`` is (N,) int64 with ``UNLABELED`` (-1) where an image
    has no label. Keeping the whole split as one tensor lets augmentation run on whole batches.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    pseudo_labels: torch.Tensor | None = None  # (N,) cluster ids from a labels file (the pseudolabel task)
    recolorized: torch.Tensor | None = None  # (N, 3, H, W) uint8: the images as a colorization run recolors them (Color-S4L)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must be (N,) matching images")
        if self.pseudo_labels is not None and self.pseudo_labels.shape != self.labels.shape:
            raise ValueError("pseudo_labels must be (N,) matching images")
        if self.recolorized is not None and self.recolorized.shape != self.images.shape:
            raise ValueError("recolorized must be (N, 3, H, W) matching images")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def labeled(self) -> bool:
        return bool((self.labels != UNLABELED).any())

    def subset(self, index: torch.Tensor) -> "ImageSet":
        pseudo = None if self.pseudo_labels is None else self.pseudo_labels[index]
        recolorized = None if self.recolorized is None else self.recolorized[index]
        return ImageSet(self.images[index], self.labels[index], self.classes, pseudo, recolorized)


@dataclass
class DatasetSplits:
    """What a source returns: the train split and, where the dataset has one, the test split."""

    name: str
    train: ImageSet
    test: ImageSet | None
    location: str
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (data.skip_bad=true)
    unlabeled: ImageSet | None = None  # extra unlabeled images a proxy task may pretrain on; memory-mapped when large
