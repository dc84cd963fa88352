"""A picture of the segmentation protocol's test predictions: rows of photo | truth | prediction, each
cropped to the photo (no canvas padding), classes in a fixed palette and ignored pixels white, so a
degenerate head (everything background) is seen at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from chromaproxy.eval.image_grid import save_image_grid
from chromaproxy.segment.masks import IGNORE


def palette(num_classes: int) -> np.ndarray:
    """(256, 3) float RGB: a distinct colour per class id (matplotlib's tab20, cycled), white for 255."""
    from matplotlib import colormaps

    colours = np.ones((256, 3))
    colours[:num_classes] = colormaps["tab20"](np.arange(num_classes) % 20)[:, :3]
    colours[IGNORE] = 1.0
    return colours


def write_prediction_grid(rgb: torch.Tensor, truth: torch.Tensor, predicted: torch.Tensor, sizes: torch.Tensor,
                          num_classes: int, path: Path) -> Path:
    """``rgb`` (N, 3, S, S) uint8, ``truth`` and ``predicted`` (N, S, S) class ids, ``sizes`` (N, 2)."""
    colours = palette(num_classes)
    rows = [(rgb[row, :, :h, :w].permute(1, 2, 0).numpy() / 255,  # (h, w, 3)
             colours[truth[row, :h, :w].long().numpy()], colours[predicted[row, :h, :w].long().numpy()])
            for row, (h, w) in enumerate(sizes.tolist())]
    return save_image_grid(rows, ("photo", "truth", "predicted"), path, cell=(1.6, 1.4), dpi=100)
