"""Sparse hypercolumn sampling (Larsson et al.): bilinear reads that agree with dense features."""

import torch

from chromaproxy.models.hypercolumn import hypercolumns, pixel_centres


def test_sparse_hypercolumns_equal_dense_features_at_pixel_centres():
    torch.manual_seed(0)
    features = {"fine": torch.randn(2, 3, 8, 8), "coarse": torch.randn(2, 5, 8, 8)}
    points = pixel_centres(8, 8, torch.device("cpu")).expand(2, -1, -1)  # (B, 64, 2)
    sampled = hypercolumns(features, points)  # (B, 64, 8)
    dense = torch.cat([features["fine"], features["coarse"]], dim=1).flatten(2).transpose(1, 2)  # (B, 64, 8)
    assert torch.allclose(sampled, dense, atol=1e-6)
