"""Class rebalancing of the ab bins (Zhang et al. 2016, §2.2) and the prior file a run stores.

Natural images are mostly desaturated, so an unweighted loss learns grayish colors. Each pixel is weighted
by w at its target bin, w ∝ 1 / ((1-λ)·p + λ/Q) with p the smoothed training prior over the Q bins it covers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from chromaproxy.checkpoint import save_tensors
from chromaproxy.color.bins import nearest_bin
from chromaproxy.errors import UserError


class ColorPrior(NamedTuple):
    centers: torch.Tensor  # (K, 2) ab bin centers
    p: torch.Tensor  # (K,) smoothed training prior
    w: torch.Tensor  # (K,) rebalancing weights


def bin_counts(ab_batches: Iterable[torch.Tensor], centers: torch.Tensor) -> torch.Tensor:
    """Number of training pixels whose nearest bin is each center, over (B, 2, H, W) batches: (K,) float64."""
    counts = torch.zeros(len(centers), dtype=torch.float64)
    for ab in ab_batches:
        counts += torch.bincount(nearest_bin(ab, centers).flatten(), minlength=len(centers)).cpu()
    return counts


def smooth_prior(counts: torch.Tensor, centers: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Counts spread over neighbouring bins by a Gaussian of their ab distance, normalised to sum 1: (K,).

    Each bin hands out its count with kernel weights that sum to 1, so smoothing moves mass without adding
    any. The kernel is not truncated: a bin no prior image reached still gets a tiny p > 0 and so the
    largest weight, rather than weight 0 for the rare colors that rebalancing exists to boost. σ = 0 turns
    smoothing off (unseen bins then have p = 0 and weight 0).
    """
    if sigma < 0:
        raise UserError(f"prior smoothing sigma={sigma} must be >= 0 (0 turns smoothing off)")
    if counts.sum() <= 0:
        raise UserError("no training pixels were counted for the ab prior: check that the dataset is not empty")
    counts = counts.double()
    if sigma > 0:
        centers = centers.to(counts.device, torch.float64)
        d = torch.cdist(centers, centers)  # (K, K)
        kernel = torch.exp(-d.square() / (2 * sigma**2))
        counts = (kernel / kernel.sum(dim=0, keepdim=True)) @ counts  # column j spreads bin j's count
    return counts / counts.sum()


def empirical_prior(ab_batches: Iterable[torch.Tensor], centers: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """The smoothed training-set prior p (K,) over the bins, from an iterable of (B, 2, H, W) ab batches."""
    return smooth_prior(bin_counts(ab_batches, centers), centers, sigma)


def rebalance_weights(p: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Weights w (K,) ∝ 1 / ((1-λ)·p + λ·uniform) on the bins with p > 0, 0 elsewhere, with Σ p·w = 1.

    Σ p·w = 1 keeps the expected loss scale of the unweighted loss. λ = 1 gives w = 1 on the support (no
    rebalancing); λ = 0 gives w = 1 / (Q·p) with Q the support size, so every bin weighs the same in total.
    """
    if not 0 <= lam <= 1:
        raise UserError(f"rebalancing lambda={lam} must be in [0, 1] (Zhang et al. use 0.5)")
    support = p > 0
    uniform = support.to(p.dtype) / support.sum()
    mix = (1 - lam) * p + lam * uniform
    w = torch.zeros_like(p)
    w[support] = 1 / mix[support]
    return w / (p * w).sum()


def pixel_weights(soft_target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) soft target -> (B, H, W) loss weight: w at the target's arg-max bin."""
    return w.to(soft_target)[soft_target.argmax(dim=1)]


def is_grayish(ab: torch.Tensor, threshold: float = 5.0) -> torch.Tensor:
    """(B, 2, H, W) ab -> (B,) True for images with no |a| or |b| above ``threshold``.

    Zhang's code zeroes these images' weights: a gray photo says nothing about the colors of its content.
    """
    return ab.abs().amax(dim=(1, 2, 3)) <= threshold


def save_prior(path: str | Path, centers: torch.Tensor, p: torch.Tensor, w: torch.Tensor) -> None:
    """Store the bins, prior and weights as safetensors so later commands reuse exactly the same classes."""
    tensors = {"centers": centers, "p": p, "w": w}
    save_tensors(path, tensors)


def load_prior(path: str | Path) -> ColorPrior:
    """Read what ``save_prior`` wrote, checking that the three tensors agree on the number of bins."""
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise UserError(f"cannot read the ab prior {path} ({err}): rerun training to write it") from None
    if set(tensors) != {"centers", "p", "w"}:
        raise UserError(f"{path} is not an ab prior file (tensors {sorted(tensors)}): rerun training to write it")
    prior = ColorPrior(tensors["centers"], tensors["p"], tensors["w"])
    K = len(prior.centers)
    if prior.centers.shape != (K, 2) or prior.p.shape != (K,) or prior.w.shape != (K,):
        raise UserError(f"{path} holds inconsistent ab prior shapes: rerun training to write it")
    return prior
