"""Invariant Information Clustering's objective (Ji, Henriques, Vedaldi 2019, Eq. 1-3).

Two views of the same images give cluster probabilities z, z' (N, k). Their joint distribution over the
batch is P = (1/N) Σ_i z_i z'_iᵀ (k, k), symmetrised, (P + Pᵀ) / 2, so that the views play the same role;
the loss is the negative mutual information I(c, c') = Σ P (log P − λ log P_i − λ log P_j) with the row and
column marginals P_i, P_j. λ = 1 is the mutual information itself; λ > 1 pushes harder for balanced
clusters. The marginals are taken from P before clamping; P and the marginals are then clamped below at
machine epsilon (float32's), as the authors' code does, so an empty cell costs a finite log.
"""

from __future__ import annotations

import torch

EPS = torch.finfo(torch.float32).eps


def joint_distribution(z: torch.Tensor, z_prime: torch.Tensor) -> torch.Tensor:
    """(N, k) and (N, k) probabilities → the symmetric joint P (k, k), summing to 1."""
    joint = z.float().t() @ z_prime.float()  # (k, k): Σ_i z_i z'_iᵀ
    joint = (joint + joint.t()) / 2
    return joint / joint.sum()


def iic_loss(z: torch.Tensor, z_prime: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """−I(c, c') of the two views' cluster probabilities (N, k) each: minimise it to cluster."""
    joint = joint_distribution(z, z_prime)
    k = joint.shape[0]
    rows = joint.sum(dim=1).view(k, 1).expand(k, k)  # P_i
    columns = joint.sum(dim=0).view(1, k).expand(k, k)  # P_j
    joint, rows, columns = joint.clamp_min(EPS), rows.clamp_min(EPS), columns.clamp_min(EPS)
    return -(joint * (joint.log() - lam * rows.log() - lam * columns.log())).sum()
