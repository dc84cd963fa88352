"""k-means at SSL++'s ablation scale (50,000 x 192 features, k = 70): faiss-cpu against scikit-learn.

Both run Lloyd's algorithm from k-means++-free random starts for the same number of iterations on the
same L2-normalised features (real NIN block features are not needed for a speed figure: Gaussian blobs
around 70 centres of the same shape); the ratio is scikit-learn's time over faiss's, measured in the
same process, and each fit's inertia is reported so a faster one that clusters worse shows.

    python benchmarks/kmeans_speed.py [--n 50000] [--dim 192] [--k 70] [--iterations 25] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import faiss
import numpy as np
import torch
from sklearn.cluster import KMeans


def blobs(n: int, dim: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)).astype(np.float32)
    points = centres[rng.integers(0, k, n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def inertia(points: np.ndarray, centres: np.ndarray) -> float:
    """Sum of squared distances of the points to their nearest centre (exact, by a flat faiss index)."""
    index = faiss.IndexFlatL2(points.shape[1])
    index.add(np.ascontiguousarray(centres, dtype=np.float32))
    return float(index.search(points, 1)[0].sum())


def run_faiss(points: np.ndarray, k: int, iterations: int) -> tuple[float, float]:
    start = time.perf_counter()
    kmeans = faiss.Kmeans(points.shape[1], k, niter=iterations, seed=0, verbose=False)
    kmeans.train(points)
    return time.perf_counter() - start, inertia(points, kmeans.centroids)


def run_sklearn(points: np.ndarray, k: int, iterations: int) -> tuple[float, float]:
    start = time.perf_counter()
    kmeans = KMeans(k, init="random", n_init=1, max_iter=iterations, tol=0, random_state=0).fit(points)
    return time.perf_counter() - start, inertia(points, kmeans.cluster_centers_.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--k", type=int, default=70)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    points = blobs(args.n, args.dim, args.k)
    times = {"faiss": [], "sklearn": []}
    inertias = {}
    for _ in range(args.repeats):  # alternated, medians reported
        for name, fit in (("faiss", run_faiss), ("sklearn", run_sklearn)):
            seconds, value = fit(points, args.k, args.iterations)
            times[name].append(seconds)
            inertias[name] = value
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; "
          f"{args.n} x {args.dim}, k={args.k}, {args.iterations} iterations, median of {args.repeats}")
    for name in times:
        print(f"  {name:8s} {medians[name]:.2f} s  inertia {inertias[name]:.1f}")
    print(f"  scikit-learn / faiss time: {medians['sklearn'] / medians['faiss']:.2f}")


if __name__ == "__main__":
    main()
