"""Soft-encoded ab targets and the decodings of a predicted bin distribution (Zhang et al. 2016, §2.1, §2.3)."""

from __future__ import annotations

import torch

from chromaproxy.color.bins import nearest_bins
from chromaproxy.errors import UserError

ANNEALED_T = 0.38  # Zhang et al.: between the mean (T = 1, desaturated) and the mode (T -> 0, patchy)


def soft_encode(ab: torch.Tensor, centers: torch.Tensor, k: int = 10, sigma: float = 5.0) -> torch.Tensor:
    """(B, 2, H, W) ab -> (B, K, H, W) target: the k nearest bins weighted by exp(-d²/2σ²), summing to 1.

    Paper k = 5, released code k = 10. Only the (N, K) distance matrix and the dense target are allocated,
    never an (N, K, 2) difference tensor. The softmax over -d²/2σ² is the normalised Gaussian, computed
    stably: a pixel far from every center still gets weights rather than 0/0.
    """
    B, _, H, W = ab.shape
    d2, idx = nearest_bins(ab, centers, k)  # (B*H*W, k)
    weights = torch.softmax(-d2 / (2 * sigma**2), dim=1)
    weights = weights.view(B, H * W, k).transpose(1, 2)  # (B, k, H*W)
    idx = idx.view(B, H * W, k).transpose(1, 2)  # (B, k, H*W)
    target = ab.new_zeros(B, len(centers), H * W).scatter_(1, idx, weights)  # (B, K, H*W)
    return target.view(B, len(centers), H, W)


def _expected_ab(probs: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) distribution over bins -> (B, 2, H, W) expectation of the bin centers."""
    return torch.einsum("bkhw,kc->bchw", probs, centers.to(probs))


def decode_annealed_mean(logits: torch.Tensor, centers: torch.Tensor, temperature: float = ANNEALED_T) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, 2, H, W) ab: the mean of softmax(logits / T) over the bin centers."""
    if temperature <= 0:
        raise UserError(f"annealed-mean temperature={temperature} must be > 0 (use decode_mode for T -> 0)")
    return _expected_ab(torch.softmax(logits / temperature, dim=1), centers)


def decode_mean(logits: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, 2, H, W) ab: the plain mean (T = 1), spatially smooth but desaturated."""
    return decode_annealed_mean(logits, centers, temperature=1.0)


def decode_mode(logits: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, 2, H, W) ab: the most likely bin's center, vivid but spatially patchy."""
    ab = centers.to(logits)[logits.argmax(dim=1)]  # (B, H, W, 2)
    return ab.permute(0, 3, 1, 2)
