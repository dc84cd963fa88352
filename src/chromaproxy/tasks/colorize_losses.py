"""The three colorization losses as pure functions over P sampled locations per image.

Shapes: B images, P locations, K ab bins, Q histogram bins. Every loss is a mean over the B*P locations
(weighted where the paper weights), so the three are on comparable scales per location.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def regression_loss(predicted_ab: torch.Tensor, target_ab: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """L2 on ab (Zhang et al. 2016, Eq. 1, the baseline they argue against): predicted and target ab,
    both (B, P, 2) and scaled to about [-1, 1], summed over a and b, averaged over locations (weighted
    by ``weights`` (B, P) when given)."""
    per_location = (predicted_ab.float() - target_ab).square().sum(-1)  # (B, P)
    return per_location.mean() if weights is None else (weights * per_location).mean()


def soft_cross_entropy(logits: torch.Tensor, soft_target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Zhang et al. 2016, Eq. 2: -sum_q z_q log softmax(logits)_q per location, times the location's
    class-rebalancing weight. logits, soft_target (B, P, K); weights (B, P) or None."""
    per_location = -(soft_target * F.log_softmax(logits.float(), dim=-1)).sum(-1)  # (B, P)
    if weights is None:
        return per_location.mean()
    return (weights * per_location).mean()


def histogram_kl(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """KL(target || softmax(logits)) per location (Larsson et al. 2016, Sec. 3.2), optionally weighted.

    logits, target (B, P, Q); target rows sum to 1 (zeros allowed); weights (B, P) or None. The target's
    entropy term is constant for the network but kept, so a perfect prediction scores exactly 0.
    """
    log_predicted = F.log_softmax(logits.float(), dim=-1)
    log_target = torch.where(target > 0, target.clamp_min(1e-12).log(), torch.zeros_like(target))
    per_location = (target * (log_target - log_predicted)).sum(-1)  # (B, P)
    if weights is None:
        return per_location.mean()
    return (weights * per_location).mean()
