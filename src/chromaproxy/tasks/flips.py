"""Rotation-and-flip prediction, the self-supervised branch of SESEMI (Tran 2019, Sec. 3).

Six labels: rotation by 0°, 90°, 180°, 270° (counter-clockwise), horizontal flip, vertical flip. By
default each image gets one transformation drawn uniformly from the six (batch size unchanged); with
``flips.all_transforms=true`` every image appears under all six in the same batch (6B inputs,
transformation-major like ``rotation``: input ``t * B + b`` is image ``b`` under transformation ``t``).
The head and loss are RotNet's, shared with ``rotation``: global average pooling of the deepest tap, one
linear layer, cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from chromaproxy.errors import UserError
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import classification_head, cross_entropy_and_accuracy

TRANSFORMS = ("rot0", "rot90", "rot180", "rot270", "hflip", "vflip")  # label = index


@dataclass
class FlipsOptions:
    tap: str | None = None  # backbone tap the classifier reads; None = the deepest
    all_transforms: bool = False  # every image under all 6 transformations (6B inputs) instead of one random


def all_six(images: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W), H = W, under each of ``TRANSFORMS``: (6, B, C, H, W)."""
    rotations = [torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]
    return torch.stack([*rotations, images.flip(-1), images.flip(-2)])  # (6, B, C, H, W)


class FlipsTask(Task):
    name = "flips"
    Options = FlipsOptions

    def __init__(self, options: FlipsOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.head = classification_head(channels, len(TRANSFORMS))

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Transformed images and their transformation labels: (B or 6B, 3, H, W), (B or 6B,)."""
        height, width = rgb.shape[-2:]
        if height != width:
            raise UserError(f"flips rotates by 90°, which needs square images, got {height}x{width} "
                            "(set data.image_size)")
        candidates = all_six(rgb)  # (6, B, 3, H, W)
        batch = rgb.shape[0]
        if self.options.all_transforms:
            targets = torch.arange(len(TRANSFORMS), device=rgb.device).repeat_interleave(batch)  # (6B,)
            return candidates.flatten(0, 1), targets  # (6B, 3, H, W)
        targets = torch.randint(len(TRANSFORMS), (batch,), generator=generator, device=rgb.device)  # (B,)
        return candidates[targets, torch.arange(batch, device=rgb.device)], targets  # (B, 3, H, W)

    def forward(self, features: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(features[self.taps[0]])  # (N, 6)
        return cross_entropy_and_accuracy(logits, targets)
