"""The colorization protocol for a PIC run (``tasks=[pic]``): what the thesis reports for PIC (§5.4) on
the test split, with the Polyak-averaged weights the run saved.

- ``bits_per_dim``: the exact NLL of the quantised chroma, NLL / (ln 2 · H'·W'·2), on un-augmented
  test images (the thesis: 2.72 on CIFAR-10 at full scale).
- the feed-forward colorizer's quality measures (AuC of the ab error, its rebalanced variant, PSNR,
  saturation) twice: for the ``mode`` (per pixel the most probable chroma) and for ``colorquality.samples``
  draws per image (``decode: sample``, the run's ``pic.temperature``);
- ``diversity``: the mean ab distance between two draws of one image, averaged over pixels, pairs and
  images (0 for a model that always answers the same);
- ``eval/colorization_grid.png``: gray | samples | truth per image.
"""

from __future__ import annotations

import itertools

import torch

from chromaproxy.color import join_lab, lab_to_rgb, rgb_to_lab, zhang_313_bins
from chromaproxy.data.augment import to_float
from chromaproxy.eval.image_grid import gray_of, write_grid
from chromaproxy.eval.protocols.colorization import GRID_FILE, REBALANCE_LAMBDA, Totals, accumulate, bin_weights
from chromaproxy.eval.color_metrics import auc_from_hits
from chromaproxy.eval.results import record
from chromaproxy.inference.colorize import predict_small_ab

GRID_SAMPLES = 4  # sample columns in the grid


def run_pic(session, options, network) -> list[dict]:
    task, centers = network.tasks["pic"], zhang_313_bins()
    totals = {"mode": Totals(), "sample": Totals()}
    bits, images, distances, first = 0.0, 0, [], None
    generator = torch.Generator(session.device).manual_seed(options.seed)
    for start in range(0, len(session.test), session.cfg.eval.batch_size):
        rgb = to_float(session.test.images[start : start + session.cfg.eval.batch_size]).to(session.device)
        bits += _bits(network, task, rgb) * len(rgb)
        images += len(rgb)
        lab, repeated = rgb_to_lab(rgb), rgb.repeat_interleave(options.samples, 0)  # (B·K, 3, H, W)
        mode = predict_small_ab(network, task, rgb, "mode", None)
        draws = predict_small_ab(network, task, repeated, "sample", None, generator=generator)
        for name, ab, truth, truth_lab in (("mode", mode, rgb, lab),
                                          ("sample", draws, repeated, lab.repeat_interleave(options.samples, 0))):
            accumulate(totals[name], truth, lab_to_rgb(join_lab(truth_lab[:, :1], ab)), ab, truth_lab[:, 1:], centers)
        distances.append(diversity(draws.reshape(len(rgb), options.samples, *draws.shape[1:])))
        first = first or _grid_columns(rgb, lab[:, :1], draws, options.samples)
    if options.grid_images > 0:
        session.pictures.append(write_grid(first, options.grid_images, session.run / "eval" / GRID_FILE))
    params = {"weights": session.weights, "samples": options.samples, "temperature": task.options.temperature}
    return [
        record(None, "colorization", "bits_per_dim", bits / images, unit="bits", **params),
        record(None, "colorization", "diversity", torch.cat(distances).mean().item(), unit="ab", **params),
        *(r for name, t in totals.items() for r in _quality(t, name, centers, params)),
        record(None, "colorization", "saturation_truth", torch.cat(totals["mode"].saturation_truth).mean().item(), **params),
    ]


@torch.no_grad()
def _bits(network, task, rgb: torch.Tensor) -> float:
    """Mean test bits/dim of a batch through the training path (no augmentation, dropout off)."""
    ab, L = task.chroma(rgb)
    return network.task_outputs("pic", rgb, {"ab": ab, "L": L})["bpd"].item()


def diversity(ab: torch.Tensor) -> torch.Tensor:
    """Per image, the mean over pixels and over pairs of draws of the ab distance. ab (N, K, 2, H, W) → (N,)."""
    pairs = list(itertools.combinations(range(ab.shape[1]), 2))
    return torch.stack([(ab[:, i] - ab[:, j]).norm(dim=1).mean(dim=(1, 2)) for i, j in pairs], dim=1).mean(1).cpu()


def _quality(totals: Totals, decode: str, centers: torch.Tensor, params: dict) -> list[dict]:
    weights = bin_weights(None, "test", totals.pixels, centers)
    common = {"decode": decode, **params}
    return [
        record(None, "colorization", "auc", auc_from_hits(totals.hits, totals.pixels), thresholds="0-150", **common),
        record(None, "colorization", "auc_rebalanced", auc_from_hits(totals.hits, totals.pixels, weights),
               thresholds="0-150", prior="test", lam=REBALANCE_LAMBDA, **common),
        record(None, "colorization", "psnr", torch.cat(totals.psnr).mean().item(), unit="dB", **common),
        record(None, "colorization", "saturation_predicted", torch.cat(totals.saturation_predicted).mean().item(), **common),
    ]


def _grid_columns(rgb: torch.Tensor, L: torch.Tensor, draws: torch.Tensor, samples: int) -> dict[str, torch.Tensor]:
    """gray | up to four samples | truth for the first batch (L: the images' lightness (B, 1, H, W))."""
    columns = {"gray": gray_of(L)}
    for k in range(min(samples, GRID_SAMPLES)):
        columns[f"sample {k + 1}"] = lab_to_rgb(join_lab(L, draws[k::samples]))
    return {**columns, "truth": rgb}
