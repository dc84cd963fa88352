"""Rotation-and-flip prediction, the self-supervised branch of SESEMI (Tran 2019, Sec. 3) and of
Color-S4L.

Six labels: rotation by 0°, 90°, 180°, 270° (counter-clockwise), horizontal flip, vertical flip.
``flips.recolorized=true`` with ``colorizer=RUN`` (Color-S4L) adds a 7th, "recolorized": the image
replaced by that colorization run's output (its own L, predicted ab), which the trainer augments exactly as the original. By default
each image gets one transformation drawn uniformly from the six (or seven; batch size unchanged); with
``flips.all_transforms=true`` every image appears under all of them in the same batch (6B or 7B inputs,
transformation-major like ``rotation``: input ``t * B + b`` is image ``b`` under transformation ``t``).
The head and loss are RotNet's, shared with ``rotation``: global average pooling of the deepest tap, one
linear layer, cross-entropy.

Random horizontal flips would make two pairs of labels the same thing: a flipped image under "rot0" is
an image under "hflip", and rot180 = hflip then vflip, so "rot180" and "vflip" also coincide; the task
could then score at most 4/6. chromaproxy resolves it by giving this task's images no random
horizontal flip (``augment_hflip = False``; the crop stays); a labeled batch of the same run keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from chromaproxy.errors import UserError
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import classification_head, cross_entropy_and_accuracy

TRANSFORMS = ("rot0", "rot90", "rot180", "rot270", "hflip", "vflip")  # label = index
RECOLORIZED = len(TRANSFORMS)  # Color-S4L's 7th label


@dataclass
class FlipsOptions:
    tap: str | None = None  # backbone tap the classifier reads; None = the deepest
    all_transforms: bool = False  # every image under all 6 (7) transformations (6B or 7B inputs) instead of one random
    recolorized: bool = False  # Color-S4L's 7th label: the image recolorized by the colorization run named in colorizer=


def all_six(images: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W), H = W, under each of ``TRANSFORMS``: (6, B, C, H, W)."""
    rotations = [torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]
    return torch.stack([*rotations, images.flip(-1), images.flip(-2)])  # (6, B, C, H, W)


class FlipsTask(Task):
    name = "flips"
    Options = FlipsOptions
    augment_hflip = False

    def __init__(self, options: FlipsOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.transforms = len(TRANSFORMS) + options.recolorized
        if options.recolorized:
            self.targets_from = "recolorized"
        self.head = classification_head(channels, self.transforms)

    def make_batch(self, rgb: torch.Tensor, recolorized: torch.Tensor, generator: torch.Generator):
        """Transformed images and their transformation labels: (B or TB, 3, H, W), (B or TB,) with T = 6,
        or 7 when ``recolorized`` holds the batch's recolorized images (else it holds the labels, unused)."""
        height, width = rgb.shape[-2:]
        if height != width:
            raise UserError(f"flips rotates by 90°, which needs square images, got {height}x{width} "
                            "(set data.image_size)")
        candidates = all_six(rgb)  # (6, B, 3, H, W)
        if self.transforms > len(TRANSFORMS):
            candidates = torch.cat([candidates, recolorized[None]])  # (7, B, 3, H, W)
        batch = rgb.shape[0]
        if self.options.all_transforms:
            targets = torch.arange(self.transforms, device=rgb.device).repeat_interleave(batch)  # (TB,)
            return candidates.flatten(0, 1), targets  # (TB, 3, H, W)
        targets = torch.randint(self.transforms, (batch,), generator=generator, device=rgb.device)  # (B,)
        return candidates[targets, torch.arange(batch, device=rgb.device)], targets  # (B, 3, H, W)

    def forward(self, features: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(features[self.taps[0]])  # (N, T)
        return cross_entropy_and_accuracy(logits, targets)
