"""Supervised classification: the reference row of every table and the labeled half of S4L-style runs.

The head follows RotNet's CIFAR classifier on top of NIN: global average pooling of the deepest tap, then
one linear layer (Gidaris et al. 2018, Sec. 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chromaproxy.data.types import UNLABELED
from chromaproxy.ranges import Momentum
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import classification_head


@dataclass
class SupervisedOptions:
    tap: str | None = None  # backbone tap the classifier reads; None = the deepest
    label_smoothing: Momentum[float] = 0.0  # cross-entropy label smoothing (0 = plain cross-entropy)


class SupervisedTask(Task):
    name = "supervised"
    Options = SupervisedOptions
    needs_labels = True

    def __init__(self, options: SupervisedOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.head = classification_head(channels, context.num_classes)

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        return rgb, labels

    def forward(self, features: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """In a mixed run a batch may hold no labeled image: the loss is then exactly 0 with a zero
        gradient (a mean over no element would be NaN), and ``acc`` is NaN, which the trainer's metric
        log skips (not logged as 0)."""
        logits = self.head(features[self.taps[0]])  # (B, num_classes)
        per_image = F.cross_entropy(
            logits.float(), labels, ignore_index=UNLABELED, label_smoothing=self.options.label_smoothing,
            reduction="none",
        )  # (B,), 0 where unlabeled
        labeled = labels != UNLABELED
        count = labeled.sum()
        loss = per_image.sum() / count.clamp(min=1)
        correct = ((logits.argmax(1) == labels) & labeled).sum()
        accuracy = torch.where(count > 0, correct / count.clamp(min=1), torch.nan)
        return {"loss": loss, "acc": accuracy.detach()}
