"""The pictures of the annotation page: per class and cluster, one strip of heatmap overlays (thesis
Eq. 3.1) on the same sampled training photos, so a person compares clusters photo by photo.

A heatmap is upsampled bilinearly from the feature map to the 160 px canvas, cropped to the photo, mapped
from the strip's range of values to [0, 1] (a cluster's photos share one scale; inner products of
non-negative unit vectors are rarely near 0, so scaling by the maximum alone would leave every photo
bright) and blended over the photo through matplotlib's ``inferno`` colours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image

from chromaproxy.segment.masks import MaskSet
from chromaproxy.segment.micro import heatmaps
from chromaproxy.segment.micro_file import class_clusters

HEIGHT = 96  # px of each photo in a strip
ALPHA = 0.55  # weight of the heatmap colour over the photo


def sample_photos(labels: torch.Tensor, c: int, samples: int, seed: int) -> list[int]:
    """Up to ``samples`` indices of photos labelled c, drawn at random (seeded), in ascending order."""
    holders = labels[:, c].nonzero().flatten()
    pick = torch.randperm(len(holders), generator=torch.Generator().manual_seed(seed + c))[:samples]
    return sorted(holders[pick].tolist())


def overlay(photo: np.ndarray, heat: np.ndarray) -> Image.Image:
    """``photo`` (h, w, 3) uint8 and ``heat`` (h, w) in [0, 1] → the blend, resized to HEIGHT px high."""
    colour = colormaps["inferno"](heat)[..., :3] * 255  # (h, w, 3)
    blend = ((1 - ALPHA) * photo + ALPHA * colour).clip(0, 255).astype(np.uint8)
    width = max(1, round(photo.shape[1] * HEIGHT / photo.shape[0]))
    return Image.fromarray(blend).resize((width, HEIGHT), Image.BILINEAR)


def strip(split: MaskSet, index: list[int], maps: torch.Tensor) -> Image.Image:
    """Photos ``index`` of the split side by side, each with its heatmap ``maps`` (n, h, w) over it."""
    side = split.images.shape[-1]
    heat = F.interpolate(maps[:, None], size=(side, side), mode="bilinear", align_corners=False)[:, 0]  # (n, S, S)
    inside = torch.zeros_like(heat, dtype=torch.bool)
    for j, i in enumerate(index):
        inside[j, : split.sizes[i, 0], : split.sizes[i, 1]] = True  # the photo, not the canvas padding
    low, high = heat[inside].min(), heat[inside].max()
    heat = ((heat - low) / (high - low).clamp(min=1e-12)).clamp(0, 1).numpy()  # the strip's range → [0, 1]
    tiles = []
    for j, i in enumerate(index):
        h, w = split.sizes[i].tolist()
        photo = split.images[i, :, :h, :w].permute(1, 2, 0).numpy()  # (h, w, 3)
        tiles.append(overlay(photo, heat[j, :h, :w]))
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), HEIGHT), "white")
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + 4
    return canvas


def write_strips(folder: Path, split: MaskSet, triple, micro: dict, samples: int, seed: int) -> dict:
    """folder/strips/class<c>-cluster<m>.png for every cluster; returns the page index per class: its name,
    the sampled photo names and the strips' paths relative to ``folder``."""
    cams, features, labels = triple
    (folder / "strips").mkdir(parents=True, exist_ok=True)
    index = {}
    for c, means, _ in class_clusters(micro, features.shape[1], cams.shape[1]):
        photos = sample_photos(labels, c, samples, seed)
        maps = heatmaps(features[photos], means)  # (n, M, h, w)
        paths = []
        for m in range(len(means)):
            paths.append(f"strips/class{c}-cluster{m}.png")
            strip(split, photos, maps[:, m]).save(folder / paths[-1])
        index[str(c)] = {"name": micro["classes"][str(c)]["name"], "images": [split.names[i] for i in photos], "strips": paths}
    return index
