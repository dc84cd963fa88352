"""Rotation prediction as a proxy task (Gidaris et al. 2018, RotNet).

Every image is fed in all of its rotations in the same mini-batch, B images → B·len(angles) inputs, which
the paper found better than one random rotation per image (Sec. 2.2). The inputs are angle-major:
input ``a * B + b`` is image ``b`` rotated by ``angles[a]`` and its label is ``a``. Multiples of 90° use
``torch.rot90`` (exact, no interpolation artefact a network could detect); other angles (the 8-rotation
ablation of Sec. 3.1 uses multiples of 45°) use a bilinear rotation with zero padding. Angles are
counter-clockwise. The head is RotNet's CIFAR classifier: global average pooling of the deepest tap, then
one linear layer (Sec. 3.1).

The head and loss (``heads``) are shared with ``flips`` (SESEMI), which classifies transformations the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import kornia
import torch

from chromaproxy.errors import UserError
from chromaproxy.ranges import Range
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import classification_head, cross_entropy_and_accuracy

@dataclass
class RotationOptions:
    angles: list[Annotated[int, Range(0, 360, high_open=True)]] = field(default_factory=lambda: [0, 90, 180, 270])  # degrees, counter-clockwise; label = index
    tap: str | None = None  # backbone tap the classifier reads; None = the deepest


def rotate(images: torch.Tensor, angle: int) -> torch.Tensor:
    """Images (B, C, H, W) rotated counter-clockwise by ``angle`` degrees: exact for multiples of 90°,
    else bilinear with zero padding (same H, W)."""
    if angle % 90 == 0:
        return torch.rot90(images, (angle // 90) % 4, dims=(-2, -1))
    degrees = torch.full((images.shape[0],), float(angle), dtype=images.dtype, device=images.device)
    return kornia.geometry.transform.rotate(images, degrees, mode="bilinear", padding_mode="zeros")


def check_angles(angles: list[int]) -> None:
    """One-line UserError unless the angles are a non-empty list of distinct rotations (modulo 360°)."""
    if not angles:
        raise UserError("rotation.angles is empty; list the rotations to classify, e.g. rotation.angles=[0,90,180,270]")
    if len({a % 360 for a in angles}) != len(angles):
        raise UserError(f"rotation.angles={angles} repeats a rotation (modulo 360); each angle must be distinct")


class RotationTask(Task):
    name = "rotation"
    Options = RotationOptions

    def __init__(self, options: RotationOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        check_angles(options.angles)
        channels = self.read_tap(context, options.tap)
        self.head = classification_head(channels, len(options.angles))

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """All rotations of every image, angle-major: (B, 3, H, W) → (A·B, 3, H, W) and labels (A·B,).

        Deterministic, so ``generator`` is unused."""
        height, width = rgb.shape[-2:]
        if height != width and any(a % 180 == 90 for a in self.options.angles):
            raise UserError(f"rotation by 90° or 270° needs square images, got {height}x{width} "
                            "(set data.image_size, or use rotation.angles=[0,180])")
        inputs = torch.cat([rotate(rgb, a) for a in self.options.angles])  # (A·B, 3, H, W)
        angle_index = torch.arange(len(self.options.angles), device=rgb.device)
        return inputs, angle_index.repeat_interleave(rgb.shape[0])  # (A·B,)

    def forward(self, features: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(features[self.taps[0]])  # (A·B, A)
        return cross_entropy_and_accuracy(logits, targets)
