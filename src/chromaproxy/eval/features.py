"""Frozen features per tap, extracted once per split and pooled before they are kept.

A raw NIN tap over 60k CIFAR images is gigabytes, so only pooled features are cached. Pooling:
``avg`` (global average, C values), ``grid<k>`` (adaptive average to k x k, C*k*k values; ``grid8`` on an
8x8 map is the flattened map RotNet's fully connected classifiers read), ``size<N>`` (the adaptive grid
whose C*k*k is closest to N), and ``maxgrid<k>`` / ``maxsize<N>`` the same with adaptive max pooling: the
AlexNet linear protocol (Zhang et al. 2016, SSL++ Table VII) max-pools each layer to about 9,000 values.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from rich.progress import Progress

from chromaproxy.data.augment import to_float
from chromaproxy.data.types import ImageSet
from chromaproxy.device import MEMORY_FORMAT, autocast
from chromaproxy.errors import UserError
from chromaproxy.models.base import Backbone
from chromaproxy.models.inputs import ModelInput

_POOLING = re.compile(r"^(avg|(max)?grid(\d+)|(max)?size(\d+))$")


def grid_side(pooling: str, channels: int, spatial: int) -> int:
    """Side k of the k x k adaptive grid a pooling setting asks for on a tap with ``channels``."""
    match = _POOLING.match(pooling)
    if match is None:
        raise UserError(f"pooling {pooling!r} is not one of: avg, grid<k>, size<N>, maxgrid<k>, maxsize<N>")
    if match.group(3):
        return min(int(match.group(3)), spatial)
    if match.group(5):
        return max(1, min(spatial, round(math.sqrt(int(match.group(5)) / channels))))
    return 1


def pool(feature_map: torch.Tensor, side: int, pooling: str = "avg") -> torch.Tensor:
    """(B, C, H, W) -> (B, C * side * side), by adaptive max pooling for ``max*`` settings, else average."""
    adaptive = F.adaptive_max_pool2d if pooling.startswith("max") else F.adaptive_avg_pool2d
    return adaptive(feature_map.float(), side).flatten(1)


@torch.no_grad()
def extract_features(
    backbone: Backbone,
    model_input: ModelInput,
    images: ImageSet,
    taps: list[str],
    pooling: str,
    device: torch.device,
    batch_size: int = 500,
    description: str = "features",
    show_progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Pooled features of every tap in one pass over ``images``: {tap: (N, D) float32 on the CPU}.

    ``show_progress=False`` inside another live display (the training bar), which rich cannot nest."""
    backbone.eval()
    spatial = images.images.shape[-1]
    sides = {
        tap: grid_side(pooling, backbone.tap_info(tap).channels, max(backbone.feature_size(tap, spatial), 1))
        for tap in taps
    }
    parts: dict[str, list[torch.Tensor]] = {tap: [] for tap in taps}
    with Progress(transient=True, disable=not show_progress) as progress:
        bar = progress.add_task(description, total=len(images))
        for start in range(0, len(images), batch_size):
            batch = to_float(images.images[start : start + batch_size].to(device, non_blocking=True))
            batch = batch.contiguous(memory_format=MEMORY_FORMAT)
            with autocast(device):
                maps = backbone.forward_features(model_input(batch), taps)
            for tap, feature_map in maps.items():
                parts[tap].append(pool(feature_map, sides[tap], pooling).cpu())
            progress.advance(bar, len(batch))
    return {tap: torch.cat(chunks) for tap, chunks in parts.items()}
