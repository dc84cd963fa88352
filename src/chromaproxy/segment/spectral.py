"""Spectral clustering of one class's mid-level patterns (Kolesnikov & Lampert, thesis ch. 3, Algorithm 3).

The similarity of two patterns is their inner product, W = F Fᵀ. The patterns are L2-normalised
non-negative features (after a ReLU), so W already lies in [0, 1] and needs no shift or clamp; a class
holds tens of thousands of patterns, so W (N x N) is never built: every product with it is F (Fᵀ x).
With D = diag(W 1), the generalised problem L v = λ D v (L = D − W) has the same eigenvalues as the
normalised affinity A = D^-1/2 W D^-1/2, λ = 1 − μ, with v = D^-1/2 u for each eigenvector u of A. The M
smallest λ are the M largest μ, which Lanczos (ARPACK's ``eigsh``) finds from products with A alone.
The number of clusters is the number of eigenvalues below ρ, kept within [m, M]; k-means on the rows of
the first k generalised eigenvectors assigns the patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh
from sklearn.cluster import KMeans

RHO, MIN_CLUSTERS, MAX_CLUSTERS = 0.7, 2, 4  # thesis ch. 3: ρ = 0.7, [m, M] = [2, 4]


@dataclass
class SpectralClusters:
    """``assign`` (N,) cluster index per pattern, ``eigenvalues`` (M,) the smallest λ ascending."""

    assign: np.ndarray
    eigenvalues: np.ndarray

    @property
    def k(self) -> int:
        return int(self.assign.max()) + 1


def normalised_affinity(patterns: np.ndarray) -> tuple[LinearOperator, np.ndarray]:
    """A = D^-1/2 F Fᵀ D^-1/2 as an operator, and D^-1/2 (N,). Every pattern needs a positive degree,
    which holds for non-negative unit vectors unless one is orthogonal to all (``class_patterns`` drops
    all-zero features, the only such case in practice)."""
    features = np.asarray(patterns, dtype=np.float64)
    degree = features @ (features.T @ np.ones(len(features)))  # (N,) = W 1
    if (degree <= 0).any():
        raise ValueError("every pattern needs a positive similarity to the others (non-negative, non-zero features)")
    scale = 1 / np.sqrt(degree)

    def product(x: np.ndarray) -> np.ndarray:
        x = x.reshape(len(features), -1) * scale[:, None]  # (N, r)
        return (features @ (features.T @ x)) * scale[:, None]

    n = len(features)
    return LinearOperator((n, n), matvec=product, matmat=product, dtype=np.float64), scale


def spectral_clusters(patterns: np.ndarray, rho: float = RHO, smallest: int = MIN_CLUSTERS,
                      largest: int = MAX_CLUSTERS, seed: int = 0) -> SpectralClusters:
    """Cluster ``patterns`` (N, C) into k ∈ [smallest, largest] groups, k = #{λ < rho}."""
    n = len(patterns)
    if n <= 2 * largest:
        raise ValueError(f"spectral clustering needs more than {2 * largest} patterns, got {n}")
    operator, scale = normalised_affinity(patterns)
    start = np.random.default_rng(seed).uniform(0.5, 1.5, n)  # fixed start vector: the same clusters every run
    mu, u = eigsh(operator, k=largest, which="LA", v0=start)
    order = np.argsort(-mu)  # largest μ first = smallest λ first
    eigenvalues, u = 1 - mu[order], u[:, order]
    k = int(np.clip((eigenvalues < rho).sum(), smallest, largest))
    embedding = u[:, :k] * scale[:, None]  # (N, k) rows of the generalised eigenvectors v = D^-1/2 u
    assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(embedding)
    return SpectralClusters(_by_size(assign, k), eigenvalues)


def _by_size(assign: np.ndarray, k: int) -> np.ndarray:
    """Cluster ids renumbered largest first, so the page and micro.json list them in a stable order."""
    sizes = np.bincount(assign, minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(k)
    return rank[assign]
