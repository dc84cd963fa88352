"""Supervised classification: the reference row of every table and the labeled half of S4L-style runs.

The head follows RotNet's CIFAR classifier on top of NIN: global average pooling of the deepest tap, then
one linear layer (Gidaris et al. 2018, Sec. 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from chromaproxy.ranges import Momentum
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import classification_head, labeled_cross_entropy


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
        logits = self.head(features[self.taps[0]])  # (B, num_classes)
        return labeled_cross_entropy(logits, labels, self.options.label_smoothing)
