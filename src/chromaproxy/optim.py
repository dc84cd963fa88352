"""Optimizers and learning-rate schedules.

The schedule is a pure function of the step, set on the optimizer before every step: resuming needs no
scheduler state, and milestones given as fractions keep the schedule's shape when a run is shortened.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from chromaproxy.config import TrainConfig


def build_optimizer(train: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (Nesterov), Adam or AdamW over two groups: weights (decayed) and 1-d tensors (BatchNorm
    parameters, biases), decayed only with ``train.bn_weight_decay``, since RotNet's and AET's code hand
    every parameter to SGD with one weight decay, while the modern default spares them."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    one_d_decay = train.weight_decay if train.bn_weight_decay else 0.0
    groups = [
        {"params": [p for p in trainable if p.ndim > 1], "weight_decay": train.weight_decay},
        {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": one_d_decay},
    ]
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train.lr, momentum=train.momentum, nesterov=train.nesterov and train.momentum > 0)
    betas = (train.betas[0], train.betas[1])
    if train.optimizer == "adam":
        return torch.optim.Adam(groups, lr=train.lr, betas=betas)
    return torch.optim.AdamW(groups, lr=train.lr, betas=betas)


def lr_at(train: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a run of ``total_steps``."""
    warmup_steps = round(train.warmup * total_steps)
    if step < warmup_steps:
        return train.lr * (step + 1) / warmup_steps
    progress = step / total_steps
    if train.schedule == "multistep":
        passed = sum(progress >= m for m in train.milestones)
        return train.lr * train.gamma**passed
    if train.schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        return 0.5 * train.lr * (1 + math.cos(math.pi * (step - warmup_steps) / span))
    if train.schedule == "poly":
        return train.lr * (1 - progress) ** train.poly_power
    if train.schedule == "exponential":
        return train.lr * train.decay_per_step ** (step - warmup_steps)
    return train.lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
