"""Transitive invariance (Wang, He, Gupta 2017, §4): a triplet-Siamese ranking loss on a mined graph's pairs.

Each training image is an edge ⟨X, X⁺⟩ of the graph stacked vertically (``video/pairs.py``), its
pseudo-label X's parent cluster. Both patches go through the shared backbone and a 2-layer FC embedding;
D(A, B) = 1 − cos(F(A), F(B)) and the loss is max(0, D(X, X⁺) − D(X, X⁻) + m), m = 0.5, where X⁻ is the
hardest (nearest) patch of the batch from another parent cluster, as the paper picks hard negatives in
the mini-batch. A batch of ordinary square images (no graph) pairs each image with its mirror image, so
the task also runs where no graph exists (the task contract checks it that way). ``edges`` selects the
paper's ablations: intra (tracking only), inter (clustering only), both, transitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.ranges import Positive
from chromaproxy.tasks.base import Task, TaskContext


@dataclass
class TransitiveOptions:
    edges: Literal["intra", "inter", "both", "transitive"] = "transitive"  # which graph edges are positive pairs
    margin: Positive[float] = 0.5  # m of the ranking loss
    hidden: Positive[int] = 1024  # first FC layer's width
    dim: Positive[int] = 1024  # embedding size (the paper's 1024)
    tap: str | None = None  # backbone tap the embedding reads; None = the deepest


def embedding_head(channels: int, hidden: int, dim: int) -> nn.Sequential:
    """Two FC layers on the pooled tap (the paper's fc6/fc7-style embedding, §4)."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),  # (N, C, 1, 1)
        nn.Flatten(),  # (N, C)
        nn.Linear(channels, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),  # (N, dim)
    )


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D = 1 − cos for rows a (N, D) and b (N, D) → (N,)."""
    return 1 - F.cosine_similarity(a, b, dim=1)


def hardest_negatives(anchor: torch.Tensor, pool: torch.Tensor, anchor_groups: torch.Tensor,
                      pool_groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For anchors (B, D) in groups (B,), the index into ``pool`` (M, D) of the nearest row of another
    group, and whether one exists (B,) bool."""
    similarity = F.normalize(anchor, dim=1) @ F.normalize(pool, dim=1).T  # (B, M)
    other = anchor_groups[:, None] != pool_groups[None, :]
    similarity = similarity.masked_fill(~other, -float("inf"))
    return similarity.argmax(dim=1), other.any(dim=1)


def triplet_ranking_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float,
                         valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over valid rows of max(0, D(X, X⁺) − D(X, X⁻) + m); rows (B, D); exactly 0 when none is valid."""
    per_triplet = F.relu(cosine_distance(anchor, positive) - cosine_distance(anchor, negative) + margin)  # (B,)
    if valid is None:
        return per_triplet.mean()
    return (per_triplet * valid).sum() / valid.sum().clamp(min=1)


def split_pairs(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked pairs (B, 3, 2S, S) → X, X⁺ (B, 3, S, S) each; square images → the image and its mirror."""
    height, width = rgb.shape[-2:]
    if height == 2 * width:
        return rgb[:, :, :width], rgb[:, :, width:]
    return rgb, rgb.flip(-1)


class TransitiveTask(Task):
    name = "transitive"
    Options = TransitiveOptions
    targets_from = "pseudo_labels"

    def __init__(self, options: TransitiveOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.head = embedding_head(channels, options.hidden, options.dim)

    def make_batch(self, rgb: torch.Tensor, parents: torch.Tensor, generator: torch.Generator):
        """Patches (2B, 3, S, S), every X before every X⁺, and the pairs' parent clusters (B,)."""
        anchor, positive = split_pairs(rgb)
        return torch.cat([anchor, positive]), parents

    def forward(self, features: dict[str, torch.Tensor], parents: torch.Tensor) -> dict[str, torch.Tensor]:
        embedded = self.head(features[self.taps[0]]).float()  # (2B, dim)
        anchor, positive = embedded.chunk(2)  # (B, dim) each
        with torch.no_grad():
            index, valid = hardest_negatives(anchor, embedded, parents, parents.repeat(2))
        loss = triplet_ranking_loss(anchor, positive, embedded[index], self.options.margin, valid.float())
        gap = cosine_distance(anchor, embedded[index]) - cosine_distance(anchor, positive)  # (B,)
        return {"loss": loss, "gap": gap.mean().detach(), "satisfied": (gap >= self.options.margin).float().mean().detach()}
