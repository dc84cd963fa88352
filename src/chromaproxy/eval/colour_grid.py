"""Pictures of colorizations: one row per image, one column per version of it (gray | predicted | truth,
or gray | PIC's samples | truth), written by the colorization protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from chromaproxy.color import join_lab, lab_to_rgb


def gray_of(L: torch.Tensor) -> torch.Tensor:
    """L (N, 1, H, W) in [0, 100] → the gray RGB image (N, 3, H, W)."""
    return lab_to_rgb(join_lab(L, torch.zeros_like(L).expand(-1, 2, -1, -1)))


def write_grid(columns: dict[str, torch.Tensor], count: int, path: Path) -> Path:
    """One row per test image (the first ``count`` of the first batch), one column per entry of
    ``columns`` (title → RGB images (N, 3, H, W)), e.g. gray | predicted | truth."""
    from chromaproxy.eval.visuals import pyplot

    titles, images = list(columns), [t[:count].cpu() for t in columns.values()]
    rows = len(images[0])
    plt = pyplot()
    figure, axes = plt.subplots(rows, len(titles), figsize=(len(titles) * 1.2, rows * 1.2), squeeze=False)
    for row, row_images in enumerate(zip(*images)):
        for column, (image, title) in enumerate(zip(row_images, titles)):
            axes[row, column].imshow(np.clip(image.permute(1, 2, 0).numpy(), 0, 1))  # (H, W, 3)
            axes[row, column].set_axis_off()
            if row == 0:
                axes[row, column].set_title(title, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
