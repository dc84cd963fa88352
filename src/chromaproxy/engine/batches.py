"""What one training step feeds the network: the augmented batch, the per-image targets its tasks read
and, in a semi-supervised run (``train.labeled_batch_size``), a second batch of labeled images.

The two batches of SESEMI and Color-S4L: the proxy tasks see an unlabeled batch drawn from every
training image, whose labels are all hidden (UNLABELED), and the tasks that need labels see a labeled
batch of their own, drawn by a ``RepeatingSampler`` from the labeled images. Neither batch carries the
other's labels, so the supervised loss can never read the label of an image outside the labeled split.

Each task says whether random horizontal flips suit it (``Task.augment_hflip``); the batch of a task
that predicts flips gets none. Recolorized images (Color-S4L) are augmented with the very same draws as
their originals, so the 7th label differs from the others only in colour.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from chromaproxy.data.augment import AugmentSpec, augment, to_float
from chromaproxy.data.types import UNLABELED, ImageSet
from chromaproxy.engine.sampler import RepeatingSampler


@dataclasses.dataclass
class StepBatches:
    spec: AugmentSpec  # the main batch's augmentation
    labeled_spec: AugmentSpec  # the labeled batch's (semi-supervised runs)
    labeled_sampler: RepeatingSampler | None
    device: torch.device

    def training(self, images: ImageSet, index: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, Any]:
        """``Network.forward``'s arguments for training step ``step`` on the images ``index``."""
        batch = images.images[index].to(self.device, non_blocking=True)
        labels = images.labels[index].to(self.device, non_blocking=True)
        rgb, recolorized = self._augmented(batch, images, index, generator)
        labeled = None
        if self.labeled_sampler is not None:
            chosen = self.labeled_sampler.batch(step)
            labeled_rgb = augment(images.images[chosen].to(self.device, non_blocking=True), self.labeled_spec, generator)
            labeled = (labeled_rgb, images.labels[chosen].to(self.device, non_blocking=True))
            labels = torch.full_like(labels, UNLABELED)
        return {"rgb": rgb, "labels": labels, "generator": generator, "pseudo_labels": _pseudo_labels(images, index, self.device),
                "labeled": labeled, "recolorized": recolorized}

    def _augmented(self, batch: torch.Tensor, images: ImageSet, index: torch.Tensor, generator: torch.Generator):
        """The augmented batch and, where the images have them, their recolorized twins under the same draws."""
        if images.recolorized is None:
            return augment(batch, self.spec, generator), None
        before = generator.get_state()
        rgb = augment(batch, self.spec, generator)
        after = generator.get_state()
        generator.set_state(before)
        recolorized = augment(images.recolorized[index].to(self.device, non_blocking=True), self.spec, generator)
        generator.set_state(after)
        return rgb, recolorized


def evaluation(images: ImageSet, index: torch.Tensor, device: torch.device, generator: torch.Generator) -> dict[str, Any]:
    """``Network.forward``'s arguments for an evaluation batch: no augmentation, one batch for every task."""
    recolorized = None if images.recolorized is None else to_float(images.recolorized[index].to(device))
    return {"rgb": to_float(images.images[index].to(device)), "labels": images.labels[index].to(device),
            "generator": generator, "pseudo_labels": _pseudo_labels(images, index, device), "recolorized": recolorized}


def main_batch_spec(spec: AugmentSpec, tasks: list[Any]) -> AugmentSpec:
    """``spec`` without horizontal flips when a task on the main batch predicts flips itself."""
    if spec.hflip and not all(task.augment_hflip for task in tasks):
        return dataclasses.replace(spec, hflip=False)
    return spec


def _pseudo_labels(images: ImageSet, index: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    return None if images.pseudo_labels is None else images.pseudo_labels[index].to(device, non_blocking=True)
