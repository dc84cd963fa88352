"""Evaluation speed, as ratios against references measured in the same run.

(a) kNN: chromaproxy's ``knn_predict`` (every k and both votes from one neighbour search) against
    scikit-learn's KNeighborsClassifier (algorithm="brute", metric="cosine"), one classifier per k and
    vote as a user of it would run, on 50,000 x 10,000 features of 192 dimensions; predictions compared.
    Two more references in the same run, on the same L2-normalised float32 features: faiss-cpu's exact
    inner-product search (IndexFlatIP) for max(k) neighbours, voted by the same rule (skipped when faiss
    is not installed), and the bare chunked matmul alone, the floor any exact search pays.
(b) Feature extraction: ``extract_features`` (uint8 images → L/RGB input → all taps → pooled) img/s
    against the same backbone's forward-only img/s on a pre-made input tensor.

    python benchmarks/eval_speed.py [--train 50000 --test 10000 --dim 192] [--only knn|extraction]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

from chromaproxy.config import load_config
from chromaproxy.data.sources import load_source
from chromaproxy.eval.features import extract_features
from chromaproxy.eval.knn import knn_predict, vote_predictions
from chromaproxy.network import Network

KS = [1, 3, 5, 10, 15, 20, 200]
TEMPERATURE = 0.07


def clustered_features(n: int, dim: int, classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Features with class structure (overlapping Gaussian clusters), like a mid-level tap."""
    centers = torch.randn(classes, dim, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return (centers[labels] + 1.5 * torch.randn(n, dim, generator=generator)).relu(), labels


def bench_knn(n_train: int, n_test: int, dim: int) -> None:
    generator = torch.Generator().manual_seed(0)
    train, train_labels = clustered_features(n_train, dim, 10, generator)
    test, _ = clustered_features(n_test, dim, 10, generator)
    knn_predict(train, train_labels, test[:64], KS, TEMPERATURE)  # warm-up: the first run pays allocations
    start = time.perf_counter()
    ours = knn_predict(train, train_labels, test, KS, TEMPERATURE)
    ours_s = time.perf_counter() - start

    reference_s, mismatches = 0.0, 0
    for vote in ("weighted", "majority"):
        weights = (lambda d: np.exp((1 - d) / TEMPERATURE)) if vote == "weighted" else "uniform"
        for k in KS:
            model = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric="cosine", weights=weights)
            start = time.perf_counter()
            predicted = model.fit(train.numpy(), train_labels.numpy()).predict(test.numpy())
            reference_s += time.perf_counter() - start
            mismatches += int((predicted != ours[(k, vote)].numpy()).sum())
    total = n_test * len(KS) * 2
    print(f"kNN {n_train}x{n_test}x{dim}, k={KS}, weighted+majority:")
    print(f"  chromaproxy {ours_s:.2f} s, scikit-learn {reference_s:.2f} s -> {reference_s / ours_s:.1f}x;"
          f" predictions differing: {mismatches} of {total}")
    floor_s = bare_matmul_seconds(train, test)
    print(f"  bare chunked matmul (the floor) {floor_s:.2f} s -> chromaproxy / floor {ours_s / floor_s:.2f}x")
    bench_faiss(train, train_labels, test, ours, ours_s)


def bare_matmul_seconds(train: torch.Tensor, test: torch.Tensor, chunk: int = 1024) -> float:
    """Only the similarity matmuls of knn_predict's chunks, on features normalised beforehand."""
    train, test = torch.nn.functional.normalize(train, dim=1), torch.nn.functional.normalize(test, dim=1)
    start = time.perf_counter()
    for first in range(0, len(test), chunk):
        test[first : first + chunk] @ train.T
    return time.perf_counter() - start


def bench_faiss(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, ours: dict, ours_s: float) -> None:
    try:
        import faiss
    except ImportError:
        print("  faiss-cpu not installed: no faiss reference (pip install faiss-cpu)")
        return
    train_n = torch.nn.functional.normalize(train, dim=1).numpy()
    test_n = torch.nn.functional.normalize(test, dim=1).numpy()
    start = time.perf_counter()
    index = faiss.IndexFlatIP(train_n.shape[1])
    index.add(train_n)
    similarity, neighbours = index.search(test_n, max(KS))
    predictions = vote_predictions(torch.from_numpy(similarity), train_labels[torch.from_numpy(neighbours)], KS,
                                   int(train_labels.max()) + 1, TEMPERATURE)
    faiss_s = time.perf_counter() - start
    mismatches = sum(int((predictions[key] != ours[key]).sum()) for key in ours)
    print(f"  faiss IndexFlatIP + the same votes {faiss_s:.2f} s ({faiss.omp_get_max_threads()} threads)"
          f" -> chromaproxy / faiss {ours_s / faiss_s:.2f}x; predictions differing: {mismatches} of {len(test) * len(KS) * 2}")


def bench_extraction(root: str | None, images: int, repeats: int = 3) -> None:
    """Interleaves the two measurements ``repeats`` times and keeps each one's best, so a busy machine
    slows both alike."""
    cfg = load_config("configs/supervised-cifar10-quick.yaml", [] if root is None else [f"data.root={root}"])
    torch.manual_seed(0)
    network = Network.from_config(cfg, num_classes=10).eval()
    subset = load_source("cifar10", root=cfg.data.root).test.subset(torch.arange(images))
    taps, device = network.backbone.tap_names, torch.device("cpu")
    batch = network.input(torch.rand(500, 3, 32, 32))

    def extraction() -> float:
        start = time.perf_counter()
        extract_features(network.backbone, network.input, subset, taps, "avg", device)
        return images / (time.perf_counter() - start)

    @torch.no_grad()
    def forward_only() -> float:
        start = time.perf_counter()
        for _ in range(images // 500):
            network.backbone.forward_features(batch, taps)
        return images / (time.perf_counter() - start)

    extraction(), forward_only()  # warm-up
    rounds = [(extraction(), forward_only()) for _ in range(repeats)]
    best_extraction, best_forward = (max(column) for column in zip(*rounds))
    print(f"feature extraction, NIN-4 width 0.5, all 4 taps, {images} CIFAR-10 images, batch 500 (best of {repeats}):")
    print(f"  extract_features {best_extraction:.0f} img/s, forward-only {best_forward:.0f} img/s"
          f" -> ratio {best_extraction / best_forward:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=50000)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--images", type=int, default=5000, help="images for the extraction benchmark")
    parser.add_argument("--root", default=None, help="data.root (default: $CHROMAPROXY_DATA)")
    parser.add_argument("--only", choices=["knn", "extraction"], help="run one of the two benchmarks")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.only != "extraction":
        bench_knn(args.train, args.test, args.dim)
    if args.only != "knn":
        bench_extraction(args.root, args.images)


if __name__ == "__main__":
    main()
