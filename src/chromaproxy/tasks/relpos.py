"""Relative patch position as a proxy task (Doersch, Gupta, Efros 2015, "Unsupervised Visual
Representation Learning by Context Prediction").

A grid x grid layout of square patches separated by ``gap`` pixels is centred in the image. For every
image one of the 8 neighbours of the centre cell is drawn uniformly; the centre patch and that neighbour
patch, each shifted by an independent jitter in [-jitter, jitter] pixels per axis, go through the shared
backbone, and a head classifies the neighbour's position (Sec. 3). The gap and jitter deny trivial
shortcuts such as continuing lines and textures across the patch boundary (Sec. 3.1); keeping
``gap >= 2·jitter`` guarantees the jittered patches never overlap.

Neighbour labels follow the paper's Fig. 2, row-major around the centre: ``NEIGHBOURS[k]`` is the
(row, col) cell offset of label k::

    0 1 2
    3 . 4
    5 6 7

CIFAR-scale variant (the paper uses 96-px patches, 48-px gaps and up to 7 px of jitter on ImageNet; no
official 32x32 version exists): with ``patch = 0`` the patch side is derived from the image,
``patch = (min(H, W) − (grid − 1)·gap − 2·jitter) // grid`` — 8 px for 32x32 images with the defaults.

Color dropping against chromatic aberration (Sec. 4.2, ``relpos.color_drop``) and the patch cutting are
in ``patches``.

Head (the paper's late-fusion fc layers, shrunk): each patch's tap is average-pooled, the two vectors are
concatenated, then Linear(2C → 256) + ReLU → Linear(256 → 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from chromaproxy.errors import UserError
from chromaproxy.ranges import NonNegative, Range
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import cross_entropy_and_accuracy, pooled_pair
from chromaproxy.tasks.patches import cut_patches, drop_colors, patch_boxes

NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]  # label → (row, col) offset
HIDDEN = 256  # width of the fusion layer


@dataclass
class RelposOptions:
    grid: Annotated[int, Range(3)] = 3  # cells per side of the patch layout (odd, >= 3); the centre cell is the reference
    patch: NonNegative[int] = 0  # patch side in pixels; 0 = (min(H, W) - (grid-1)*gap - 2*jitter) // grid
    gap: NonNegative[int] = 2  # pixels between neighbouring cells (must be >= 2*jitter so patches never overlap)
    jitter: NonNegative[int] = 1  # each patch moves independently by up to this many pixels per axis
    color_drop: bool = True  # keep one random channel per patch, replace the other two with weak noise
    tap: str | None = None  # backbone tap the head reads; None = the deepest


def patch_side(height: int, width: int, options: RelposOptions) -> int:
    """The patch side: ``options.patch``, or derived from the image size when it is 0 (module docstring)."""
    if options.patch > 0:
        return options.patch
    return (min(height, width) - (options.grid - 1) * options.gap - 2 * options.jitter) // options.grid


def check_layout(height: int, width: int, patch: int, options: RelposOptions) -> None:
    """One-line UserError unless the jittered grid of disjoint patches fits inside an H x W image."""
    if options.grid < 3 or options.grid % 2 == 0:
        raise UserError(f"relpos.grid={options.grid} must be odd and >= 3 (the centre cell needs 8 neighbours)")
    if options.jitter < 0 or options.gap < 2 * options.jitter:
        raise UserError(f"relpos.gap={options.gap} must be >= 2*relpos.jitter={2 * options.jitter} "
                        "(jitter >= 0), or jittered patches could overlap")
    span = options.grid * patch + (options.grid - 1) * options.gap + 2 * options.jitter
    if patch < 1 or span > min(height, width):
        raise UserError(f"relpos layout (grid {options.grid}, patch {patch}, gap {options.gap}, jitter "
                        f"{options.jitter}) does not fit in {height}x{width} images; lower relpos.patch or relpos.gap")


def neighbour_cells(labels: torch.Tensor, grid: int) -> torch.Tensor:
    """Row-major cell index (B,) of the neighbour each label (B,) names, around the centre cell."""
    offsets = torch.tensor(NEIGHBOURS, device=labels.device)[labels]  # (B, 2)
    centre = grid // 2
    return (centre + offsets[:, 0]) * grid + centre + offsets[:, 1]


def jittered_corners(
    boxes: torch.Tensor, labels: torch.Tensor, grid: int, jitter: int, generator: torch.Generator
) -> torch.Tensor:
    """Top-left corners (B, 2, 2) of [centre, neighbour] patches, indexed [image, patch, (top, left)],
    each moved by an independent uniform jitter in [-jitter, jitter] per axis."""
    device = labels.device
    centre = torch.full_like(labels, grid * grid // 2)
    cells = torch.stack([centre, neighbour_cells(labels, grid)], dim=1)  # (B, 2)
    corners = boxes.to(device)[cells, :2]  # (B, 2, 2)
    shift = torch.randint(-jitter, jitter + 1, corners.shape, generator=generator, device=device)
    return corners + shift


def fusion_head(channels: int) -> nn.Sequential:
    """Doersch's pair classifier (Sec. 3, Fig. 3), shrunk: concatenated pooled features (N, 2C) → 8 logits."""
    return nn.Sequential(
        nn.Linear(2 * channels, HIDDEN),  # (N, 256)
        nn.ReLU(inplace=True),
        nn.Linear(HIDDEN, len(NEIGHBOURS)),  # (N, 8)
    )


class RelposTask(Task):
    name = "relpos"
    Options = RelposOptions

    def __init__(self, options: RelposOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.head = fusion_head(channels)

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Centre patches then neighbour patches (2B, 3, P, P), and the neighbour labels (B,) in [0, 8)."""
        options = self.options
        height, width = rgb.shape[-2:]
        patch = patch_side(height, width, options)
        check_layout(height, width, patch, options)
        boxes = patch_boxes(height, width, options.grid, patch, options.gap)
        targets = torch.randint(0, len(NEIGHBOURS), (rgb.shape[0],), generator=generator, device=rgb.device)
        corners = jittered_corners(boxes, targets, options.grid, options.jitter, generator)  # (B, 2, 2)
        inputs = torch.cat([cut_patches(rgb, corners[:, 0], patch), cut_patches(rgb, corners[:, 1], patch)])
        if options.color_drop:
            inputs = drop_colors(inputs, generator)
        return inputs, targets

    def forward(self, features: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(pooled_pair(features[self.taps[0]]))  # (B, 8): centres' and neighbours' features
        return cross_entropy_and_accuracy(logits, targets)
