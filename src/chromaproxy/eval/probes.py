"""Classifiers trained on cached, detached pooled features: the linear and MLP probes.

All heads (one per tap, or per tap and depth) are trained in the same pass over the data: each step
draws one batch of image indices and every head sees its own tap's features of those images. The
heads are independent modules, so this is the same as training them one by one, at a fraction of the
Python overhead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import nn

from chromaproxy.optim import lr_at, set_lr


def linear_head(dim: int, num_classes: int, batchnorm: bool) -> nn.Module:
    """BN (no affine) + linear, the per-layer probe of VISSL/mmselfsup; or a plain linear layer."""
    layers: list[nn.Module] = [nn.BatchNorm1d(dim, affine=False)] if batchnorm else []
    return nn.Sequential(*layers, nn.Linear(dim, num_classes))


def mlp_head(dim: int, num_classes: int, layers: int, hidden: int = 200, batchnorm: bool = False) -> nn.Module:
    """RotNet's MultLayer classifier (Gidaris et al. 2018, CIFAR experiments; SSL++ Table IV's 1FC/2FC/3FC):
    ``layers`` fully connected layers, each hidden one Linear(→hidden, no bias) + BN + ReLU, the last
    Linear(→classes). ``batchnorm`` first normalises the input (BN, no affine): on the flattened map
    (192x8x8) the raw post-ReLU scales differ by orders of magnitude between taps and runs."""
    blocks: list[nn.Module] = [nn.BatchNorm1d(dim, affine=False)] if batchnorm else []
    for _ in range(layers - 1):
        blocks += [nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        dim = hidden
    return nn.Sequential(*blocks, nn.Linear(dim, num_classes))


def train_heads(
    heads: dict[str, nn.Module],
    features: dict[str, torch.Tensor],
    labels: torch.Tensor,
    options: Any,
    seed: int,
    description: str = "probes",
) -> None:
    """Train each ``heads[name]`` on ``features[name]`` (N, D) with cross-entropy and SGD + multistep lr.

    ``options`` carries epochs, batch_size, lr, momentum, weight_decay, milestones, gamma.
    """
    modules = nn.ModuleDict(heads).train()
    optimizer = sgd(modules, options)
    for index in scheduled_batches(len(labels), optimizer, options, seed, description):
        loss = sum(F.cross_entropy(modules[name](features[name][index]), labels[index]) for name in modules)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    modules.eval()


def sgd(module: nn.Module, options: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(module.parameters(), lr=options.lr, momentum=options.momentum,
                           weight_decay=options.weight_decay, nesterov=options.momentum > 0)


def scheduled_batches(
    size: int, optimizer: torch.optim.Optimizer, options: Any, seed: int, description: str
) -> Iterator[torch.Tensor]:
    """Index batches over ``options.epochs`` seeded shuffles of ``range(size)``, setting the scheduled lr
    before each one and showing a progress bar."""
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(size // options.batch_size, 1)
    total = options.epochs * steps_per_epoch
    with Progress(transient=True) as progress:
        bar = progress.add_task(description, total=total)
        for step in range(total):
            if step % steps_per_epoch == 0:
                order = torch.randperm(size, generator=generator)
            set_lr(optimizer, lr_at(options, step, total))
            yield order[(step % steps_per_epoch) * options.batch_size :][: options.batch_size]
            progress.advance(bar)


@torch.no_grad()
def head_accuracy(head: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch: int = 4096) -> float:
    head.eval()
    correct = sum(
        (head(features[i : i + batch]).argmax(1) == labels[i : i + batch]).sum().item()
        for i in range(0, len(labels), batch)
    )
    return correct / len(labels)
