"""The ab bins and class-rebalancing weights of a classification colorization run (Zhang et al. 2016, Sec. 2.2).

They are estimated once, from the training images, when the run starts, and saved in the run
(``colorization_prior.safetensors``): a network rebuilt for evaluation or inference has no training images
and reads them back, so it decodes with exactly the bins it was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from chromaproxy.color import bin_counts, data_bins, load_prior, rebalance_weights, rgb_to_lab, save_prior, smooth_prior, zhang_313_bins
from chromaproxy.data.augment import to_float
from chromaproxy.data.types import ImageSet
from chromaproxy.errors import UserError

if TYPE_CHECKING:
    from chromaproxy.tasks.colorize import ColorizationOptions

PRIOR_FILE = "colorization_prior.safetensors"
PRIOR_BATCH = 500  # images per Lab conversion while counting


def run_prior(images: ImageSet | None, run: Path | None, options: ColorizationOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """(centers (K, 2), rebalancing weights (K,)): estimated from ``images`` and saved in ``run`` when
    training, read from ``run`` when the network is rebuilt without images."""
    path = run / PRIOR_FILE if run is not None else None
    if images is None:
        if path is None or not path.is_file():
            raise UserError(f"the colorization prior {path} is missing; it is written when the run starts training")
        prior = load_prior(path)
        return prior.centers, prior.w
    centers, prior, weights = estimate_prior(images, options)
    if path is not None:
        save_prior(path, centers, prior, weights)
    return centers, weights


@torch.no_grad()
def estimate_prior(images: ImageSet, options: ColorizationOptions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centers (K, 2), prior p (K,), rebalancing weights w (K,)) from the first ``prior_images`` images."""
    subset = images.images[: options.prior_images]
    ab_batches = [rgb_to_lab(to_float(subset[i : i + PRIOR_BATCH]))[:, 1:] for i in range(0, len(subset), PRIOR_BATCH)]
    if options.bins == "zhang":
        centers = zhang_313_bins()
    else:
        centers = data_bins(torch.cat(ab_batches), options.bin_size)  # from (N, 2, H, W)
    prior = smooth_prior(bin_counts(ab_batches, centers), centers, options.sigma)
    weights = rebalance_weights(prior, options.rebalance_lambda) if options.rebalance else torch.ones_like(prior)
    return centers, prior, weights
