"""Context encoder as a proxy task (Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting").

The network sees an image whose central square is blanked out and reconstructs it from the surrounding
context. This is the paper's "central region" variant (Sec. 3.3) with the L2 reconstruction loss only
(Sec. 3.2; the adversarial term is not used, as in the paper's feature-learning experiments).

CIFAR-scale variant (the paper works at 128x128 with a 64x64 hole; no official 32x32 version exists):

* the hole is ``hole`` x ``hole`` pixels (default 16, the paper's hole/image ratio of 1/2 per side),
  centred at ``((H - hole) // 2, (W - hole) // 2)``;
* the hole is filled with the constant ``FILL`` = 0.5 gray, standing in for the dataset mean pixel that
  the paper fills with (CIFAR's mean is about (0.49, 0.48, 0.45)). A constant, unlike a per-image mean,
  leaks nothing about the hidden pixels, and it stays a constant in every input representation;
* the target is the hole enlarged by ``overlap`` pixels on each side; as in the paper's code, the
  visible ``overlap`` border is weighted ``overlap_weight`` (10) times the hole interior, so the
  reconstruction must blend into its context;
* the decoder reads the deepest tap (8x8 for NIN at 32x32), pools it to a fixed 4x4 grid (so any input
  size works), spreads information across the grid with the paper's channel-wise fully connected layer
  followed by a 1x1 convolution (Sec. 3.1), then up-convolves (ConvTranspose2d 4x4 stride 2 + BN + ReLU,
  Sec. 3.1) to at least the target size, maps to RGB with a sigmoid (the paper's tanh for [-1, 1] images)
  and resizes bilinearly to exactly (hole + 2·overlap)².
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from chromaproxy.errors import UserError
from chromaproxy.ranges import NonNegative, Positive
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.context_decoder import context_decoder

FILL = 0.5  # value of every channel inside the hole: a stand-in for the dataset mean pixel


@dataclass
class ContextOptions:
    hole: Positive[int] = 16  # side in pixels of the blanked-out central square
    overlap: NonNegative[int] = 2  # visible border (pixels per side) reconstructed along with the hole
    overlap_weight: NonNegative[float] = 10.0  # L2 weight of the overlap border relative to the hole interior (paper: 10)
    tap: str | None = None  # backbone tap the decoder reads; None = the deepest


class ContextTargets(NamedTuple):
    region: torch.Tensor  # (B, 3, S, S) original pixels of the hole plus its overlap border, S = hole + 2·overlap
    weights: torch.Tensor  # (S, S) L2 weight of each pixel of the region


def hole_origin(height: int, width: int, hole: int) -> tuple[int, int]:
    """Top-left corner (top, left) of the centred hole x hole square."""
    return (height - hole) // 2, (width - hole) // 2


def center_mask(height: int, width: int, hole: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (H, W) mask, True exactly on the centred hole x hole square."""
    top, left = hole_origin(height, width, hole)
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[top : top + hole, left : left + hole] = True
    return mask


def overlap_weights(hole: int, overlap: int, overlap_weight: float, device: torch.device | None = None) -> torch.Tensor:
    """(S, S) weights, S = hole + 2·overlap: ``overlap_weight`` on the border, 1 on the hole interior."""
    side = hole + 2 * overlap
    weights = torch.full((side, side), float(overlap_weight), device=device)
    weights[overlap : overlap + hole, overlap : overlap + hole] = 1.0
    return weights


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Pathak's weighted L2: mean over (B, 3, S, S) of ``weights · (pred − target)²``.

    pred, target: (B, 3, S, S); weights: (S, S), broadcast over batch and channels. As in the paper's code,
    the mean is over elements (not normalised by the weights), so the interior's scale is plain MSE."""
    return (weights * (pred.float() - target.float()).square()).mean()


def check_geometry(height: int, width: int, options: ContextOptions) -> None:
    """One-line UserError unless the hole and its overlap border fit inside an H x W image."""
    if options.hole < 1 or options.overlap < 0:
        raise UserError(f"context.hole={options.hole} must be >= 1 and context.overlap={options.overlap} >= 0")
    side = options.hole + 2 * options.overlap
    if side > min(height, width):
        raise UserError(f"context.hole + 2*context.overlap = {side} does not fit in {height}x{width} images "
                        "(lower context.hole or context.overlap)")


class ContextTask(Task):
    name = "context"
    Options = ContextOptions

    def __init__(self, options: ContextOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.head = context_decoder(channels, options.hole + 2 * options.overlap)

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Images with the central hole filled (B, 3, H, W) and ``ContextTargets``.

        Deterministic, so ``generator`` is unused."""
        height, width = rgb.shape[-2:]
        check_geometry(height, width, self.options)
        hole, overlap = self.options.hole, self.options.overlap
        inputs = rgb.masked_fill(center_mask(height, width, hole, rgb.device), FILL)  # (B, 3, H, W)
        top, left = hole_origin(height, width, hole)
        side = hole + 2 * overlap
        region = rgb[..., top - overlap : top - overlap + side, left - overlap : left - overlap + side]  # (B, 3, S, S)
        weights = overlap_weights(hole, overlap, self.options.overlap_weight, rgb.device)
        return inputs, ContextTargets(region.clone(), weights)

    def forward(self, features: dict[str, torch.Tensor], targets: ContextTargets) -> dict[str, torch.Tensor]:
        pred = self.head(features[self.taps[0]])  # (B, 3, S, S)
        loss = reconstruction_loss(pred, targets.region, targets.weights)
        inner = slice(self.options.overlap, self.options.overlap + self.options.hole)
        l2 = F.mse_loss(pred[..., inner, inner].float(), targets.region[..., inner, inner].float())
        return {"loss": loss, "l2": l2.detach()}
