"""Clustering quality against ground-truth labels: Hungarian-matched accuracy, NMI and ARI.

Used by the clustering issues (IIC, SSL++ pseudo-labels) and usable on any predicted assignment.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def hungarian_accuracy(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy under the best one-to-one mapping of clusters to classes (Kuhn-Munkres).

    With more clusters than classes (over-clustering) only as many clusters as classes are matched; the
    rest count as errors, the strict convention. clusters, labels: (N,) int64.
    """
    num = max(int(clusters.max()), int(labels.max())) + 1
    counts = np.zeros((num, num), dtype=np.int64)  # (cluster, class)
    np.add.at(counts, (clusters.numpy(), labels.numpy()), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels))


def nmi(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    return float(normalized_mutual_info_score(labels.numpy(), clusters.numpy()))


def ari(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    return float(adjusted_rand_score(labels.numpy(), clusters.numpy()))
