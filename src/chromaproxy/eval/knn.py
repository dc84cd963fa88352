"""k-nearest-neighbour classification on frozen features (cosine similarity), many k from one search.

The test features are processed in chunks: each chunk's similarities to all train features are one
matmul, of which only the top max(k) are kept, so 50k x 10k never materialises as a full matrix. Votes:
``weighted`` sums exp(s / T) over the neighbours (T = 0.07, as the peers' kNN monitors); ``majority``
counts them. Ties go to the smallest class index. Neighbour ranking is by descending similarity, ties by
ascending train index, which is what scikit-learn's brute-force search returns for equal distances.

Where faiss-cpu is installed, float32 features are searched by its exact inner-product index (IndexFlatIP),
which measured faster than torch's matmul alone on CPU-2 (benchmarks/RESULTS.md); rows with a tie among the
neighbours are redone by the torch path, so the ranking rule holds. faiss's inner products may differ from
torch's in the last bit, so a near-tie can rank differently between the two; float64 always uses torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chromaproxy.errors import UserError

try:
    import faiss
except ImportError:  # optional (the dev extras install it)
    faiss = None

VOTES = ("weighted", "majority")


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    ks: list[int],
    temperature: float = 0.07,
    chunk: int = 1024,
    backend: str = "auto",
) -> dict[tuple[int, str], torch.Tensor]:
    """Predicted labels for every (k, vote) pair.

    train_features (N, D), train_labels (N,) int64 in [0, C), test_features (M, D); returns
    {(k, vote): (M,) int64}. ``backend``: auto (faiss for float32 when installed), torch or faiss.
    """
    ks = sorted(set(min(k, len(train_features)) for k in ks))
    num_classes = int(train_labels.max()) + 1
    train = F.normalize(_floating(train_features), dim=1)
    predictions: dict[tuple[int, str], list[torch.Tensor]] = {(k, v): [] for k in ks for v in VOTES}
    use_faiss = _use_faiss(backend, train)
    if use_faiss:  # one search over every query: faiss chunks internally, faster than our chunks
        test = F.normalize(_floating(test_features), dim=1)
        ranked = _faiss_neighbours(_faiss_index(train), train, test, ks[-1])  # (M, max k) each
    for start in range(0, len(test_features), chunk):
        if use_faiss:
            similarity, neighbours = (part[start : start + chunk] for part in ranked)
        else:
            test = F.normalize(_floating(test_features[start : start + chunk]), dim=1)
            similarity, neighbours = _top_neighbours(test @ train.T, ks[-1])  # (m, max k) each
        for key, predicted in vote_predictions(similarity, train_labels[neighbours], ks, num_classes, temperature).items():
            predictions[key].append(predicted)
    return {key: torch.cat(parts) for key, parts in predictions.items()}


def vote_predictions(similarity: torch.Tensor, neighbour_labels: torch.Tensor, ks: list[int], num_classes: int,
                     temperature: float) -> dict[tuple[int, str], torch.Tensor]:
    """Both votes for every k (ascending) from ranked neighbours: similarity, neighbour_labels (m, max k).

    Scores grow neighbour block by neighbour block (first k1, then up to k2 …), so every k costs one argmax
    over (m, C); a separate function so a benchmark can vote on another search's neighbours by the same rule.
    """
    weights = {"weighted": (similarity / temperature).exp(), "majority": torch.ones_like(similarity)}
    predictions = {}
    for vote, weight in weights.items():
        scores = torch.zeros(len(similarity), num_classes, dtype=weight.dtype)  # (m, C)
        done = 0
        for k in ks:
            scores.scatter_add_(1, neighbour_labels[:, done:k], weight[:, done:k])
            predictions[(k, vote)] = scores.argmax(dim=1)  # first maximum: ties go to the lower class
            done = k
    return predictions


def _top_neighbours(similarity: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k by descending similarity, ties broken by the lower train index (what a stable sort gives).

    ``topk`` orders equal values arbitrarily and picks arbitrarily among values tied at the cut, so it
    takes one extra neighbour to see a tie crossing the cut, and only rows with a tie (a few percent of
    float32 rows against 50k features) are redone: every value at or above their cut, ordered by
    (-similarity, index). The common case costs one topk.
    """
    extra = min(k + 1, similarity.shape[1])
    top, index = similarity.topk(extra, dim=1)  # (m, k or k + 1), descending
    tied = (top[:, 1:] == top[:, :-1]).any(dim=1).nonzero().flatten()
    if len(tied):
        rows = similarity[tied]  # (t, N)
        wide = int((rows >= top[tied, -1:]).sum(dim=1).max())  # every value tied at the cut is inside
        values, candidates = rows.topk(wide, dim=1)
        by_index = torch.argsort(candidates, dim=1)
        values, candidates = values.gather(1, by_index), candidates.gather(1, by_index)
        by_value = torch.sort(-values, dim=1, stable=True).indices[:, :extra]
        top[tied], index[tied] = values.gather(1, by_value), candidates.gather(1, by_value)
    return top[:, :k], index[:, :k]


def _use_faiss(backend: str, train: torch.Tensor) -> bool:
    if backend == "faiss" and faiss is None:
        raise UserError("knn backend faiss needs faiss-cpu: pip install faiss-cpu")
    return faiss is not None and train.dtype == torch.float32 and backend != "torch"


def _faiss_index(train: torch.Tensor):
    index = faiss.IndexFlatIP(train.shape[1])
    index.add(train.contiguous().numpy())
    return index


def _faiss_neighbours(index, train: torch.Tensor, test: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """faiss's top k + 1 (to see a tie at the cut); rows with any tie are redone by ``_top_neighbours``."""
    top, found = index.search(test.contiguous().numpy(), min(k + 1, len(train)))
    top, found = torch.from_numpy(top), torch.from_numpy(found).long()  # (m, k + 1), descending
    tied = (top[:, 1:] == top[:, :-1]).any(dim=1).nonzero().flatten()
    top, found = top[:, :k].clone(), found[:, :k].clone()
    if len(tied):
        top[tied], found[tied] = _top_neighbours(test[tied] @ train.T, k)
    return top, found


def _floating(features: torch.Tensor) -> torch.Tensor:
    """Half-precision features are searched in float32; float64 stays float64 (exact comparisons)."""
    return features if features.dtype in (torch.float32, torch.float64) else features.float()
