"""Linear CKA (Kornblith et al. 2019): how similar two representations of the same images are.

Used to measure feature shift during fine-tuning (Larsson 2017 asks how much self-supervised features
change): 1 means the same representation up to rotation and isotropic scaling, lower means more change.
"""

from __future__ import annotations

import torch


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """x (N, D1), y (N, D2): features of the same N images; returns CKA in [0, 1]."""
    x = (x - x.mean(0)).double()
    y = (y - y.mean(0)).double()
    cross = (y.T @ x).square().sum()
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()))
