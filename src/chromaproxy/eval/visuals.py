"""Pictures of one tap's representation: a t-SNE map of test images coloured by class, and a
nearest-neighbour retrieval grid (test queries, then their top-8 training images by cosine similarity,
framed green when the neighbour shares the query's class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.manifold import TSNE

from chromaproxy.eval.session import EvalSession

TSNE_IMAGES = 1000
QUERIES = 8
NEIGHBOURS = 8


def write_visuals(session: EvalSession, tap: str, plots: Path) -> list[Path]:
    """t-SNE and retrieval plots of ``tap`` into ``plots``; returns the files written."""
    plots.mkdir(parents=True, exist_ok=True)
    train = session.features("train", "avg")[tap]
    test = session.features("test", "avg")[tap]
    return [
        tsne_plot(test[:TSNE_IMAGES], session.test.labels[:TSNE_IMAGES], session.classes, tap, plots / f"tsne_{tap}.png", session.cfg.seed),
        retrieval_grid(session, train, test, tap, plots / f"retrieval_{tap}.png"),
    ]


def tsne_plot(features: torch.Tensor, labels: torch.Tensor, classes: list[str], tap: str, path: Path, seed: int) -> Path:
    perplexity = min(30.0, (len(features) - 1) / 3)
    points = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(features.numpy())
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 6))
    for index, name in enumerate(classes):
        chosen = (labels == index).numpy()
        axis.scatter(points[chosen, 0], points[chosen, 1], s=6, label=name)
    axis.set_title(f"t-SNE of {tap} ({len(features)} test images)")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(markerscale=3, fontsize=7, loc="best")
    return _save(figure, path, plt)


def retrieval_grid(session: EvalSession, train: torch.Tensor, test: torch.Tensor, tap: str, path: Path) -> Path:
    similarity = F.normalize(test[:QUERIES], dim=1) @ F.normalize(train, dim=1).T  # (Q, N)
    neighbours = similarity.topk(NEIGHBOURS, dim=1).indices  # (Q, 8)
    plt = pyplot()
    figure, axes = plt.subplots(QUERIES, NEIGHBOURS + 1, figsize=(NEIGHBOURS + 1, QUERIES))
    for row in range(QUERIES):
        _show(axes[row, 0], session.test.images[row], "black")
        query_label = session.test.labels[row]
        for column, index in enumerate(neighbours[row].tolist(), start=1):
            colour = "green" if session.train.labels[index] == query_label else "red"
            _show(axes[row, column], session.train.images[index], colour)
    figure.suptitle(f"{tap}: test queries (left) and their nearest training images")
    return _save(figure, path, plt)


def _show(axis, image: torch.Tensor, colour: str) -> None:
    axis.imshow(image.permute(1, 2, 0).numpy().astype(np.uint8))  # (H, W, 3)
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(2)


def _save(figure, path: Path, plt) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def pyplot():
    """pyplot on the file-only Agg backend (servers have no display), loaded only when drawing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
