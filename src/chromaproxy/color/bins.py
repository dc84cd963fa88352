"""Quantisations of the ab plane into classes: Zhang's 313 in-gamut bins, or bins read off training data.

Bin centers are (K, 2) float32 tensors of (a, b); a class index is a row of that tensor.
"""

from __future__ import annotations

import torch

from chromaproxy.errors import UserError

# Zhang et al. 2016, released gamut: for each a (step 10) the inclusive range of b (step 10) that is in gamut.
_ZHANG_B_RANGE = {
    -90: (50, 90), -80: (20, 90), -70: (0, 90), -60: (-20, 90), -50: (-30, 100),
    -40: (-40, 100), -30: (-50, 100), -20: (-50, 100), -10: (-60, 100), 0: (-70, 100),
    10: (-80, 90), 20: (-80, 90), 30: (-90, 90), 40: (-100, 90), 50: (-100, 80),
    60: (-110, 80), 70: (-110, 80), 80: (-110, 70), 90: (-110, 70), 100: (-90, 0),
}  # fmt: skip


def zhang_313_bins() -> torch.Tensor:
    """The 313 ab bin centers of Zhang et al. 2016, ordered by a then b, as (313, 2) float32."""
    centers = [(a, b) for a, (lo, hi) in _ZHANG_B_RANGE.items() for b in range(lo, hi + 1, 10)]
    return torch.tensor(centers, dtype=torch.float32)


def ab_pixels(ab: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) or (N, 2) ab -> (N, 2), one row per pixel (batch-major, then row-major)."""
    if ab.dim() == 4:
        return ab.permute(0, 2, 3, 1).reshape(-1, 2)  # (B*H*W, 2)
    return ab


def data_bins(ab: torch.Tensor, bin_size: float = 10.0, min_count: int = 1) -> torch.Tensor:
    """Centers of the ab-histogram cells holding at least ``min_count`` training pixels (Goyal et al. 2019).

    The grid is aligned so centers are multiples of ``bin_size``; the bin size sets the task's difficulty.
    """
    if bin_size <= 0 or min_count < 1:
        raise UserError(f"ab bins need bin_size > 0 and min_count >= 1 (got {bin_size}, {min_count})")
    cells = torch.round(ab_pixels(ab).float() / bin_size).long()  # (N, 2)
    cells, counts = torch.unique(cells, dim=0, return_counts=True)  # sorted by a then b
    kept = cells[counts >= min_count]
    if len(kept) == 0:
        raise UserError(f"no ab bin holds {min_count} training pixels: lower min_count or use more data")
    return kept.float() * bin_size


def nearest_bins(ab: torch.Tensor, centers: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distances and indices (N, k) of each pixel's k nearest centers, nearest first."""
    if not 1 <= k <= len(centers):
        raise UserError(f"k={k} nearest ab bins asked for, but there are {len(centers)} bins: pick 1..{len(centers)}")
    dist = torch.cdist(ab_pixels(ab), centers.to(ab))  # (N, K)
    dist, idx = dist.topk(k, dim=1, largest=False)  # (N, k)
    return dist.square(), idx


def nearest_bin(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) ab -> (B, H, W) int64 index of the nearest bin center: the hard class label."""
    B, _, H, W = ab.shape
    return nearest_bins(ab, centers, 1)[1].view(B, H, W)
