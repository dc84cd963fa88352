"""k-means of features: well-separated clusters are recovered, by faiss and by the scikit-learn fallback."""

from __future__ import annotations

import builtins

import torch

from chromaproxy.cluster import kmeans as kmeans_module
from chromaproxy.eval.cluster_metrics import hungarian_accuracy


def _blobs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(8)[:4] * 10  # 4 orthogonal directions: far apart after L2 normalisation too
    truth = torch.arange(200) % 4
    return centres[truth] + 0.3 * torch.randn(200, 8, generator=generator), truth


def test_kmeans_recovers_separated_clusters_and_is_seeded():
    features, truth = _blobs()
    clusters = kmeans_module.kmeans(features, 4, seed=0)
    assert clusters.dtype == torch.int64 and hungarian_accuracy(clusters, truth) == 1.0
    assert torch.equal(clusters, kmeans_module.kmeans(features, 4, seed=0))


def test_without_faiss_scikit_learn_does_the_same(monkeypatch):
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    features, truth = _blobs()
    assert hungarian_accuracy(kmeans_module.kmeans(features, 4, seed=0), truth) == 1.0
