"""The IIC objective against a naive double-sum reference, and at its two extremes."""

from __future__ import annotations

import math

import torch

from chromaproxy.cluster.iic import EPS, iic_loss, joint_distribution


def _naive(z: torch.Tensor, z_prime: torch.Tensor, lam: float) -> float:
    n, k = z.shape
    P = [[sum(float(z[i, a] * z_prime[i, b]) for i in range(n)) for b in range(k)] for a in range(k)]
    P = [[(P[a][b] + P[b][a]) / 2 for b in range(k)] for a in range(k)]
    total = sum(map(sum, P))
    P = [[value / total for value in row] for row in P]
    rows = [sum(P[a]) for a in range(k)]
    columns = [sum(P[a][b] for a in range(k)) for b in range(k)]
    loss = 0.0
    for a in range(k):
        for b in range(k):
            p = max(P[a][b], EPS)
            loss -= p * (math.log(p) - lam * math.log(max(rows[a], EPS)) - lam * math.log(max(columns[b], EPS)))
    return loss


def test_the_loss_equals_a_naive_double_sum():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(12, 4, generator=generator).softmax(1)
    z_prime = torch.randn(12, 4, generator=generator).softmax(1)
    for lam in (1.0, 1.5):
        assert math.isclose(iic_loss(z, z_prime, lam).item(), _naive(z, z_prime, lam), rel_tol=1e-5, abs_tol=1e-6)


def test_the_joint_is_symmetric_and_sums_to_one():
    generator = torch.Generator().manual_seed(1)
    joint = joint_distribution(torch.rand(8, 3, generator=generator), torch.rand(8, 3, generator=generator))
    assert torch.allclose(joint, joint.t()) and math.isclose(joint.sum().item(), 1.0, rel_tol=1e-6)


def test_a_perfect_balanced_pairing_reaches_minus_log_k_and_independent_views_zero():
    k = 5
    one_hot = torch.eye(k).repeat(4, 1)  # 20 images, 4 per cluster, both views agree
    assert math.isclose(iic_loss(one_hot, one_hot).item(), -math.log(k), abs_tol=1e-4)  # clamped empty cells add ~eps
    uniform = torch.full((20, k), 1 / k)
    assert abs(iic_loss(uniform, uniform).item()) < 1e-6
    generator = torch.Generator().manual_seed(2)
    random = torch.randn(20, k, generator=generator).softmax(1)
    assert iic_loss(one_hot, one_hot) < iic_loss(random, random.roll(1, 0)) < 0.5


def test_a_degenerate_single_cluster_is_not_rewarded():
    collapsed = torch.zeros(20, 5)
    collapsed[:, 0] = 1
    assert abs(iic_loss(collapsed, collapsed).item()) < 1e-4
