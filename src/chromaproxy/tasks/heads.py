"""Heads and losses that several tasks share (declarative block lists citing their paper)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.data.types import UNLABELED


def classification_head(channels: int, classes: int) -> nn.Sequential:
    """RotNet's CIFAR head (Gidaris et al. 2018, Sec. 3.1): global average pool, then Linear(C → classes)."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),  # (N, C, 1, 1)
        nn.Flatten(),  # (N, C)
        nn.Linear(channels, classes),  # (N, classes)
    )


def cross_entropy_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean cross-entropy of logits (N, K) against labels (N,) in [0, K), and the detached top-1 accuracy."""
    loss = F.cross_entropy(logits.float(), labels)
    accuracy = (logits.argmax(1) == labels).float().mean()
    return {"loss": loss, "acc": accuracy.detach()}


def labeled_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
    """Cross-entropy of logits (B, K) over the images whose label (B,) is not UNLABELED, and their accuracy.

    In a mixed run a batch may hold no labeled image: the loss is then exactly 0 with a zero gradient (a
    mean over no element would be NaN), and ``acc`` is NaN, which the trainer's metric log skips (not
    logged as 0)."""
    per_image = F.cross_entropy(
        logits.float(), labels, ignore_index=UNLABELED, label_smoothing=label_smoothing, reduction="none"
    )  # (B,), 0 where unlabeled
    labeled = labels != UNLABELED
    count = labeled.sum()
    loss = per_image.sum() / count.clamp(min=1)
    correct = ((logits.argmax(1) == labels) & labeled).sum()
    accuracy = torch.where(count > 0, correct / count.clamp(min=1), torch.nan)
    return {"loss": loss, "acc": accuracy.detach()}


def pooled_pair(maps: torch.Tensor) -> torch.Tensor:
    """The siamese fusion of relpos and AET: maps (2B, C, h, w) holding two halves of B images each
    (first halves first) → their globally average-pooled features side by side (B, 2C)."""
    first, second = maps.mean(dim=(2, 3)).chunk(2)  # (B, C) each
    return torch.cat([first, second], dim=1)
