"""k-nearest-neighbour classification on frozen features (cosine similarity), many k from one search.

The test features are processed in chunks: each chunk's similarities to all train features are one
matmul, of which only the top max(k) are kept, so 50k x 10k never materialises as a full matrix. Votes:
``weighted`` sums exp(s / T) over the neighbours (T = 0.07, as the peers' kNN monitors); ``majority``
counts them. Ties go to the smallest class index. Neighbour ranking is by descending similarity, ties by
ascending train index, which is what scikit-learn's brute-force search returns for equal distances.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

VOTES = ("weighted", "majority")


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    ks: list[int],
    temperature: float = 0.07,
    chunk: int = 1024,
) -> dict[tuple[int, str], torch.Tensor]:
    """Predicted labels for every (k, vote) pair.

    train_features (N, D), train_labels (N,) int64 in [0, C), test_features (M, D); returns
    {(k, vote): (M,) int64}.
    """
    ks = sorted(set(min(k, len(train_features)) for k in ks))
    num_classes = int(train_labels.max()) + 1
    train = F.normalize(_floating(train_features), dim=1)
    predictions: dict[tuple[int, str], list[torch.Tensor]] = {(k, v): [] for k in ks for v in VOTES}
    for start in range(0, len(test_features), chunk):
        test = F.normalize(_floating(test_features[start : start + chunk]), dim=1)
        similarity, neighbours = _top_neighbours(test @ train.T, ks[-1])  # (m, max k) each
        votes = F.one_hot(train_labels[neighbours], num_classes).float()  # (m, max k, C)
        weights = {"weighted": (similarity / temperature).exp(), "majority": torch.ones_like(similarity)}
        for vote, weight in weights.items():
            cumulative = (votes * weight.unsqueeze(-1)).cumsum(dim=1)  # (m, max k, C): scores for every k
            for k in ks:
                predictions[(k, vote)].append(cumulative[:, k - 1].argmax(dim=1))
    return {key: torch.cat(parts) for key, parts in predictions.items()}


def _top_neighbours(similarity: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k by similarity, ties broken by the lower train index (a stable descending sort).

    ``topk`` picks arbitrarily among values tied at the cut, so rows where a tie crosses it (rare with real
    features, common with repeated ones) are redone by a full stable sort."""
    top, index = similarity.topk(k, dim=1)  # (m, k)
    cut = top[:, -1:]
    crossing = ((similarity == cut).sum(1) > (top == cut).sum(1)).nonzero().flatten()
    if len(crossing):
        index[crossing] = torch.sort(-similarity[crossing], dim=1, stable=True).indices[:, :k]
        top[crossing] = similarity[crossing].gather(1, index[crossing])
    order = torch.argsort(index, dim=1)
    top, index = top.gather(1, order), index.gather(1, order)
    order = torch.argsort(-top, dim=1, stable=True)
    return top.gather(1, order), index.gather(1, order)


def _floating(features: torch.Tensor) -> torch.Tensor:
    """Half-precision features are searched in float32; float64 stays float64 (exact comparisons)."""
    return features if features.dtype in (torch.float32, torch.float64) else features.float()
