"""A picture of sample edges of each kind, so a user sees what a mined graph holds (one row per kind)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

PAIRS_PER_KIND = 6


def edge_picture(graph: dict[str, torch.Tensor], kinds: tuple[str, ...], path: Path, seed: int = 0) -> Path:
    """``PAIRS_PER_KIND`` random edges of each kind, each shown as its two patches side by side."""
    generator = torch.Generator().manual_seed(seed)
    figure, axes = plt.subplots(len(kinds), PAIRS_PER_KIND, figsize=(2 * PAIRS_PER_KIND, 1.3 * len(kinds)), squeeze=False)
    for row, kind in enumerate(kinds):
        edges = graph[kind]
        chosen = torch.randperm(len(edges), generator=generator)[:PAIRS_PER_KIND]
        for column, ax in enumerate(axes[row]):
            ax.axis("off")
            if column < len(chosen):
                a, b = edges[chosen[column]].tolist()
                pair = torch.cat([graph["patches"][a], graph["patches"][b]], dim=2)  # (3, S, 2S)
                ax.imshow(pair.permute(1, 2, 0).numpy())
        axes[row][0].set_title(f"{kind} ({len(edges)} edges)", loc="left", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
