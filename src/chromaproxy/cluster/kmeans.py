"""k-means of frozen features, SSL++'s pseudo-label baseline (Table IX: clusters of a pretrained
backbone's features instead of IIC's).

Lloyd's algorithm on L2-normalised features (cosine geometry, as the kNN protocol), by faiss-cpu when it
is installed and scikit-learn otherwise; benchmarks/kmeans_speed.py measures both at SSL++'s scale
(50,000 x 192, k = 70), see benchmarks/RESULTS.md. Both are seeded, so the same features give the same
clusters.
"""

from __future__ import annotations

import numpy as np
import torch

ITERATIONS = 25


def kmeans(features: torch.Tensor, k: int, seed: int = 0, iterations: int = ITERATIONS) -> torch.Tensor:
    """Cluster ids (N,) int64 of features (N, D), L2-normalised first."""
    points = torch.nn.functional.normalize(features.float(), dim=1).numpy()
    try:
        import faiss
    except ImportError:
        return torch.from_numpy(_sklearn(points, k, seed, iterations))
    model = faiss.Kmeans(points.shape[1], k, niter=iterations, seed=seed, verbose=False)
    model.train(points)
    return torch.from_numpy(model.index.search(points, 1)[1][:, 0].astype(np.int64))


def _sklearn(points: np.ndarray, k: int, seed: int, iterations: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, init="random", n_init=1, max_iter=iterations, random_state=seed).fit_predict(points).astype(np.int64)
