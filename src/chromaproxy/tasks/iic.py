"""Invariant Information Clustering as a training task (Ji, Henriques, Vedaldi 2019), what ``chromaproxy
cluster`` trains before it assigns every image to a cluster.

Two heads read the globally pooled deepest tap: head A over-clusters (``overcluster_k``, SSL++ takes 70
on CIFAR-10) and head B has as many clusters as classes (``k``). Each head is ``sub_heads`` independent
Linear + softmax layers (5 in the paper), which makes the result less dependent on one head's
initialisation; each sub-head's loss is the IIC mutual information between an image's anchor and each
of its paired views (``cluster/views.py``, ``cluster/iic.py``), and a head's loss is the mean over its
sub-heads. With ``pairs: all`` every two of an image's 1 + V transformed versions form a pair (6 instead
of 3 for V = 3): the anchor is itself a random crop, so the versions are interchangeable, and the joint
distribution gets (1 + V)/2 times the samples for the price of the heads only, the backbone's pass being
shared. The heads are trained alternately, one step each (the paper alternates whole epochs; a step
keeps both heads moving in a short CPU run): the loss is always both heads' sum, but on a training step
the resting head's part is detached, so only the active head and the backbone get a gradient. A running
mean of every sub-head's loss is kept in the weights, and assignment uses the sub-head with the lowest
one, as the paper selects its head.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Annotated, Literal

import torch
from torch import nn

from chromaproxy.cluster.iic import iic_loss
from chromaproxy.cluster.views import centre_crop, paired_views
from chromaproxy.errors import UserError
from chromaproxy.ranges import NonNegative, Positive, Range
from chromaproxy.tasks.base import Task, TaskContext

HEADS = ("overcluster", "clusters")  # head A, head B
LOSS_MOMENTUM = 0.98  # running mean of the sub-head losses: about the last 50 steps


@dataclass
class IicOptions:
    overcluster_k: Positive[int] = 70  # clusters of the over-clustering head A (SSL++: 70 on CIFAR-10)
    k: Positive[int] | None = None  # clusters of head B; None = the dataset's number of classes
    sub_heads: Positive[int] = 5  # independent sub-heads per head; the lowest-loss one is used
    views: Positive[int] = 3  # paired views per image (each compared with the image's anchor; see pairs)
    crop: Positive[int] = 20  # side of the random crops (CIFAR: 20 of 32)
    size: Positive[int] | None = None  # side the crops are resized to; None = the image side (the paper's 32)
    jitter: list[NonNegative[float]] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.125])  # brightness, contrast, saturation, hue of the views
    lam: Annotated[float, Range(1, 10)] = 1.0  # λ of the loss: 1 = the mutual information; above 1 pushes for balanced clusters
    alternate: bool = True  # train heads A and B on alternate steps (false: both every step)
    pairs: Literal["anchor", "all"] = "anchor"  # anchor: each view with its anchor (the paper); all: every two versions of an image
    tap: str | None = None  # backbone tap the heads read; None = the deepest


class IicTask(Task):
    name = "iic"
    Options = IicOptions
    partial_graph = True  # with alternate=true a step leaves the other head without a gradient

    def __init__(self, options: IicOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        if len(options.jitter) != 4:
            raise UserError(f"iic.jitter={options.jitter} needs 4 values: [brightness, contrast, saturation, hue]")
        k = options.k or context.num_classes
        if not k:
            raise UserError("iic.k is not set and the dataset has no classes; set iic.k=NUMBER_OF_CLUSTERS")
        channels = self.read_tap(context, options.tap)
        self.sizes = {"overcluster": options.overcluster_k, "clusters": k}
        self.heads = nn.ModuleDict({
            head: nn.ModuleList(nn.Linear(channels, size) for _ in range(options.sub_heads))
            for head, size in self.sizes.items()
        })
        for head in HEADS:
            self.register_buffer(f"{head}_losses", torch.full((options.sub_heads,), torch.nan))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Anchors then paired views: (B, 3, H, W) → (B·(1 + views), 3, S, S); the target is B."""
        o = self.options
        return paired_views(rgb, o.views, o.crop, tuple(o.jitter), generator, o.size), rgb.shape[0]

    def forward(self, features: dict[str, torch.Tensor], batch: int) -> dict[str, torch.Tensor]:
        pooled = features[self.taps[0]].float().mean(dim=(2, 3))  # (B·(1 + V), C)
        first, second = self._pairs(pooled, batch)  # (P·B, C) each: row i of one is paired with row i of the other
        losses, information = {}, {}
        for head in HEADS:
            losses[head], information[head] = self._sub_head_losses(head, first, second)  # each (S,)
        if self.training:
            self._track(losses)
        means = {head: losses[head].mean() for head in HEADS}
        if self.training and self.options.alternate:
            resting = HEADS[int(self.steps) % 2]  # step 1 trains head A, step 2 head B, …
            means[resting] = means[resting].detach()
        loss = means["overcluster"] + means["clusters"]
        return {"loss": loss, **{f"mi_{head}": information[head].mean() for head in HEADS}}

    def _pairs(self, pooled: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The two sides of every pair from the pooled anchors then views (B·(1 + V), C): P = V pairs per
        image (anchor, view v) or, with ``pairs: all``, P = (1 + V)·V/2 (every two versions)."""
        versions = pooled.split(batch)  # 1 + V tensors (B, C): the anchors, then each view
        if self.options.pairs == "anchor":
            return versions[0].repeat(self.options.views, 1), pooled[batch:]
        first, second = zip(*itertools.combinations(versions, 2))
        return torch.cat(first), torch.cat(second)

    def _sub_head_losses(self, head: str, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every sub-head's loss (S,) at ``iic.lam`` and its detached mutual information I(c, c') (S,)."""
        losses, information = [], []
        for layer in self.heads[head]:
            z, z_prime = layer(first).softmax(1), layer(second).softmax(1)
            losses.append(iic_loss(z, z_prime, self.options.lam))
            information.append(-iic_loss(z.detach(), z_prime.detach()) if self.options.lam != 1 else -losses[-1].detach())
        return torch.stack(losses), torch.stack(information)

    @torch.no_grad()
    def _track(self, losses: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for head in HEADS:
            running = getattr(self, f"{head}_losses")
            running.copy_(torch.where(running.isnan(), losses[head], LOSS_MOMENTUM * running + (1 - LOSS_MOMENTUM) * losses[head]))

    def best_sub_head(self, head: str) -> int:
        """Index of ``head``'s sub-head with the lowest running loss (0 before any training step)."""
        running = getattr(self, f"{head}_losses")
        return 0 if running.isnan().all() else int(running.nan_to_num(torch.inf).argmin())

    def assignment_input(self, rgb: torch.Tensor) -> torch.Tensor:
        """What an image looks like when it is assigned a cluster: its centre crop, resized."""
        return centre_crop(rgb, self.options.crop, self.options.size)

    def probabilities(self, pooled: torch.Tensor, head: str) -> torch.Tensor:
        """Cluster probabilities (N, k) of the best sub-head of ``head`` from pooled features (N, C) of
        assignment inputs."""
        return self.heads[head][self.best_sub_head(head)](pooled.float()).softmax(1)
