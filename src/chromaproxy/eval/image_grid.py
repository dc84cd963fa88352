"""Grids of pictures, one row per test image and one titled column per version of it: gray | predicted |
truth for the colorization protocol, gray | PIC's samples | truth for a PIC run, photo | truth |
prediction for the segmentation protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from chromaproxy.color import join_lab, lab_to_rgb


def save_image_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], path: Path,
                    cell: tuple[float, float] = (1.2, 1.2), dpi: int = 110) -> Path:
    """Pictures (H, W, 3) in [0, 1], ``rows`` of them, the titles over the first row; writes ``path``."""
    from chromaproxy.eval.visuals import pyplot

    plt = pyplot()
    figure, axes = plt.subplots(len(rows), len(titles), figsize=(len(titles) * cell[0], len(rows) * cell[1]), squeeze=False)
    for row, pictures in enumerate(rows):
        for column, (picture, title) in enumerate(zip(pictures, titles)):
            axes[row, column].imshow(picture)
            axes[row, column].set_axis_off()
            if row == 0:
                axes[row, column].set_title(title, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def gray_of(L: torch.Tensor) -> torch.Tensor:
    """L (N, 1, H, W) in [0, 100] → the gray RGB image (N, 3, H, W)."""
    return lab_to_rgb(join_lab(L, torch.zeros_like(L).expand(-1, 2, -1, -1)))


def write_grid(columns: dict[str, torch.Tensor], count: int, path: Path) -> Path:
    """The first ``count`` images of each column (title → RGB images (N, 3, H, W) in [0, 1])."""
    images = [t[:count].cpu() for t in columns.values()]
    rows = [[np.clip(image.permute(1, 2, 0).numpy(), 0, 1) for image in row] for row in zip(*images)]  # (H, W, 3) each
    return save_image_grid(rows, list(columns), path)
