"""Colorization quality metrics (Zhang, Isola, Efros 2016, §3.1 and Table 1), as pure tensor functions.

- AuC of the cumulative ab-error curve: per pixel, the Euclidean distance between predicted and true ab;
  for each threshold t = 0 … 150 the fraction of pixels with error <= t; the area under that curve,
  normalised to [0, 1] (the mean over thresholds). A constant error e scores (151 - e) / 151.
- Class-rebalanced AuC: the same fractions with each pixel weighted by the rebalancing weight w of its
  ground truth's nearest ab bin, so rare saturated colours count as much as the common grays.
- PSNR per image in RGB (dB), averaged over images; saturation as the mean HSV saturation.

Shapes: ab (B, 2, H, W) in Lab units; RGB (B, 3, H, W) in [0, 1]; thresholds (T,); bins K.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from chromaproxy.color import nearest_bin

THRESHOLDS = range(0, 151)  # Zhang et al.: ab error thresholds 0 … 150
PSNR_CAP = 100.0  # dB; a perfect image (MSE 0) scores this instead of inf, which JSON cannot hold
_MSE_FLOOR = 10 ** (-PSNR_CAP / 10)


def ab_errors(pred_ab: torch.Tensor, true_ab: torch.Tensor) -> torch.Tensor:
    """Per-pixel Euclidean ab distance: (B, 2, H, W) twice → (B, H, W)."""
    return (pred_ab.double() - true_ab.double()).square().sum(1).sqrt()


def _thresholds(thresholds: Iterable[float], device: torch.device) -> torch.Tensor:
    values = torch.as_tensor(list(thresholds), dtype=torch.float64, device=device)
    if values.numel() == 0 or bool((values.diff() <= 0).any()):
        raise ValueError("thresholds must be a non-empty increasing sequence")
    return values


def _hit_index(errors: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Index of the first threshold t with error <= t (T when none): a pixel is a hit at every later one."""
    return torch.bucketize(errors, thresholds, right=False)


def cumulative_accuracy(errors: torch.Tensor, thresholds: Iterable[float] = THRESHOLDS, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(T,) (weighted) fraction of pixels with error <= t, for errors and weights of any equal shape."""
    limits = _thresholds(thresholds, errors.device)
    weights = torch.ones_like(errors, dtype=torch.float64) if weights is None else weights.to(errors.device, torch.float64)
    mass = torch.zeros(len(limits) + 1, dtype=torch.float64, device=errors.device)
    mass.index_add_(0, _hit_index(errors.double().flatten(), limits), weights.flatten())  # (T+1,)
    total = weights.sum()
    if total <= 0:
        raise ValueError("the pixel weights sum to 0: nothing to measure")
    return mass.cumsum(0)[:-1] / total


def ab_error_auc(pred_ab: torch.Tensor, true_ab: torch.Tensor, thresholds: Iterable[float] = THRESHOLDS, weights: torch.Tensor | None = None) -> float:
    """Area under the cumulative ab-error curve in [0, 1]; ``weights`` (B, H, W) per pixel gives the
    class-rebalanced AuC (w at each ground-truth pixel's nearest bin, see ``rebalance_weights``)."""
    return cumulative_accuracy(ab_errors(pred_ab, true_ab), thresholds, weights).mean().item()


def binned_hits(pred_ab: torch.Tensor, true_ab: torch.Tensor, centers: torch.Tensor, thresholds: Iterable[float] = THRESHOLDS) -> tuple[torch.Tensor, torch.Tensor]:
    """Sufficient statistics of both AuCs, summable over batches: hits (K, T), the number of pixels whose
    true ab's nearest bin is k and whose error is <= t, and pixels (K,), the pixels per bin."""
    limits = _thresholds(thresholds, pred_ab.device)
    bins = nearest_bin(true_ab, centers.to(true_ab)).flatten()  # (B*H*W,)
    cells = bins * (len(limits) + 1) + _hit_index(ab_errors(pred_ab, true_ab).flatten(), limits)
    counts = torch.bincount(cells, minlength=len(centers) * (len(limits) + 1)).double()
    counts = counts.view(len(centers), len(limits) + 1)  # (K, T+1)
    return counts.cumsum(1)[:, :-1].cpu(), counts.sum(1).cpu()


def auc_from_hits(hits: torch.Tensor, pixels: torch.Tensor, w: torch.Tensor | None = None) -> float:
    """AuC from ``binned_hits`` statistics; with per-bin weights w (K,) the class-rebalanced AuC."""
    w = torch.ones_like(pixels) if w is None else w.to(pixels)
    total = (w * pixels).sum()
    if total <= 0:
        raise ValueError("the pixel weights sum to 0: nothing to measure")
    return ((w @ hits) / total).mean().item()


def psnr_per_image(pred_rgb: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of RGB images in [0, 1], capped at ``PSNR_CAP`` (MSE floored) so 0 error is finite."""
    mse = (pred_rgb.double() - true_rgb.double()).square().flatten(1).mean(1)  # (B,)
    return 10 * torch.log10(1 / mse.clamp_min(_MSE_FLOOR))


def psnr(pred_rgb: torch.Tensor, true_rgb: torch.Tensor) -> float:
    """Per-image PSNR (dB) averaged over the images (not the PSNR of the pooled MSE)."""
    return psnr_per_image(pred_rgb, true_rgb).mean().item()


def saturation_per_image(rgb: torch.Tensor) -> torch.Tensor:
    """(B,) mean HSV saturation (max - min) / max of RGB (B, 3, H, W) in [0, 1]; black pixels count 0."""
    high, low = rgb.double().amax(1), rgb.double().amin(1)  # (B, H, W) each
    saturation = torch.where(high > 0, (high - low) / high.clamp_min(1e-12), torch.zeros_like(high))
    return saturation.flatten(1).mean(1)


def saturation(rgb: torch.Tensor) -> float:
    """Mean HSV saturation in [0, 1] over all pixels of equally sized images."""
    return saturation_per_image(rgb).mean().item()
