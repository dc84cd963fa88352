"""Auto-Encoding Transformations as a proxy task (Zhang, Qi, Wang, Luo 2019, AET).

Each image is warped by one random transformation and the network regresses the transformation's
parameters from the pair (original, warped). The encoder is siamese: both halves go through the shared
backbone as one batch of 2B images, original first; the regressor sees the concatenated globally pooled
features of the two halves (Sec. 3.1, 4.1.1) and is trained with the mean squared error.

The transformations and their parameters are in ``aet_transforms``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.ranges import NonNegative
from chromaproxy.tasks.aet_transforms import PARAMS, Kind, sample_affine, sample_projective, warp
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import pooled_pair


@dataclass
class AetOptions:
    transform: Kind = "projective"  # which family of transformations to regress (AET-project / AET-affine)
    tap: str | None = None  # backbone tap the regressor reads; None = the deepest
    hidden: NonNegative[int] = 0  # >0: a Linear + BatchNorm + ReLU layer of this width before the output layer


def regression_head(channels: int, params: int, hidden: int) -> nn.Sequential:
    """AET's regressor (Sec. 4.1.1) on the concatenated pooled features of both halves (2C): Linear(2C →
    params), optionally after Linear(2C → hidden) + BatchNorm + ReLU."""
    if hidden <= 0:
        return nn.Sequential(nn.Linear(2 * channels, params))
    return nn.Sequential(
        nn.Linear(2 * channels, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, params),
    )


class AetTask(Task):
    name = "aet"
    Options = AetOptions

    def __init__(self, options: AetOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.head = regression_head(channels, PARAMS[options.transform], options.hidden)

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Originals then their warps, (B, 3, H, W) → (2B, 3, H, W), and the parameters (B, 8) or (B, 6)."""
        kind = self.options.transform
        sample = sample_projective if kind == "projective" else sample_affine
        matrices, params = sample(rgb.shape[0], tuple(rgb.shape[-2:]), generator, rgb.device)
        return torch.cat([rgb, warp(rgb, matrices, kind)]), params

    def forward(self, features: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        predicted = self.head(pooled_pair(features[self.taps[0]]))  # (B, params)
        loss = F.mse_loss(predicted.float(), targets.float())
        return {"loss": loss, "param_mse": loss.detach()}
