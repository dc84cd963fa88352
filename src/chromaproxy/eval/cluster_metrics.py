"""Clustering quality against ground-truth labels: cluster accuracy under IIC's two conventions, NMI, ARI.

IIC (Ji et al. 2019) reports a head with as many clusters as classes by the best one-to-one mapping
(Hungarian), and an over-clustering head (SSL++ uses 70 clusters on CIFAR-10) by mapping each cluster to
its majority class (many-to-one); a one-to-one score of an over-clustering would count most clusters as
errors, so the two are not comparable and every reported number says which it is. Used by the clustering
issues (IIC, SSL++ pseudo-labels) and usable on any predicted assignment.
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


def many_to_one_accuracy(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy when every cluster is labeled with its majority class (ties: the lower class index), as
    IIC's over-clustering evaluation. clusters, labels: (N,) int64."""
    counts = np.zeros((int(clusters.max()) + 1, int(labels.max()) + 1), dtype=np.int64)  # (cluster, class)
    np.add.at(counts, (clusters.numpy(), labels.numpy()), 1)
    return float(counts.max(axis=1).sum() / len(labels))


def cluster_accuracy(clusters: torch.Tensor, labels: torch.Tensor, num_clusters: int, num_classes: int
                     ) -> tuple[float, str]:
    """(accuracy, convention): one-to-one ``hungarian`` when ``num_clusters`` (the head's size, used or
    not) is at most ``num_classes``, else ``many-to-one``; record the convention beside the value."""
    if num_clusters <= num_classes:
        return hungarian_accuracy(clusters, labels), "hungarian"
    return many_to_one_accuracy(clusters, labels), "many-to-one"


def nmi(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    return float(normalized_mutual_info_score(labels.numpy(), clusters.numpy()))


def ari(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    return float(adjusted_rand_score(labels.numpy(), clusters.numpy()))
