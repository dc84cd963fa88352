"""Colorization protocol: how well the run's own colorization head colours the test split (Zhang et al.
2016, Table 1). Not per tap: records have ``"tap": null``; options are the ``colorquality.*`` section.

The whole trained network is reloaded (``load_network``, the checkpoint ``evaluate --checkpoint`` names), fed L of each test
image, and its head predicts ab at every pixel (``colorquality.decode``, ``colorquality.temperature``;
both matter only for a classification or histogram head). Reported: AuC of the cumulative ab-error curve
(thresholds 0 … 150), its class-rebalanced variant, per-image RGB PSNR (dB, capped at 100), and the mean
HSV saturation of the predicted and of the true images (gray predictions show up as low saturation).

Rebalanced AuC prior (``colorquality.rebalance_prior``, recorded as ``prior`` in every record):
``run`` uses the bins and smoothed training prior saved with a classification run; ``test`` uses Zhang's
313 bins with a prior estimated (σ = 5 smoothing) from the ground truth of the evaluated test images
themselves, the only choice for regression and histogram runs, whose heads have no bins, and the one that
makes numbers comparable across losses. ``auto`` = ``run`` for classification runs, else ``test``. Either
way the weights are ``rebalance_weights(p, λ = 0.5)``, as Zhang's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from chromaproxy.color import join_lab, lab_to_rgb, load_prior, rebalance_weights, rgb_to_lab, smooth_prior, zhang_313_bins
from chromaproxy.data.augment import to_float
from chromaproxy.errors import UserError
from chromaproxy.eval.image_grid import gray_of, write_grid
from chromaproxy.eval.color_metrics import auc_from_hits, binned_hits, psnr_per_image, saturation_per_image
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import RANDOM_MARKER, EvalSession
from chromaproxy.inference.colorize import predict_small_ab
from chromaproxy.network import Network, load_network
from chromaproxy.tasks.colorize_prior import PRIOR_FILE

GRID_FILE = "colorization_grid.png"
LOCATIONS = 2**16  # hypercolumn locations per head call (images x pixels), bounds inference memory
METRIC_IMAGES = 64  # images per nearest-bin search when binning the ground truth
REBALANCE_LAMBDA = 0.5  # Zhang et al. 2016


@dataclass
class Totals:
    """Sums over the test split: AuC statistics per bin and per-image PSNR and saturations."""

    hits: torch.Tensor | float = 0.0  # (K, T)
    pixels: torch.Tensor | float = 0.0  # (K,)
    psnr: list[torch.Tensor] = field(default_factory=list)
    saturation_predicted: list[torch.Tensor] = field(default_factory=list)
    saturation_truth: list[torch.Tensor] = field(default_factory=list)


def run(session: EvalSession, options) -> list[dict]:
    if "pic" in session.cfg.tasks:
        from chromaproxy.eval.protocols.pic_quality import run_pic

        return run_pic(session, options, colouring_network(session))
    network = colouring_network(session)
    task = network.tasks["colorization"]
    prior = _prior_source(options.rebalance_prior, task.options.loss)
    centers = load_prior(session.run / PRIOR_FILE).centers if prior == "run" else zhang_313_bins()
    totals, first = Totals(), None
    for start in range(0, len(session.test), session.cfg.eval.batch_size):
        rgb = to_float(session.test.images[start : start + session.cfg.eval.batch_size]).to(session.device)
        L, pred_rgb, pred_ab, true_ab = _colorize(network, rgb, options)
        accumulate(totals, rgb, pred_rgb, pred_ab, true_ab, centers)
        first = first if first is not None else {"gray": gray_of(L), "predicted": pred_rgb, "truth": rgb}
    weights = bin_weights(session.run, prior, totals.pixels, centers)
    params = {"decode": options.decode, "temperature": options.temperature, "loss": task.options.loss,
              "weights": session.weights}
    if options.grid_images > 0:
        session.pictures.append(write_grid(first, options.grid_images, session.run / "eval" / GRID_FILE))
    return [
        record(None, "colorization", "auc", auc_from_hits(totals.hits, totals.pixels), thresholds="0-150", **params),
        record(None, "colorization", "auc_rebalanced", auc_from_hits(totals.hits, totals.pixels, weights),
               thresholds="0-150", prior=prior, **params),
        record(None, "colorization", "psnr", torch.cat(totals.psnr).mean().item(), unit="dB", **params),
        record(None, "colorization", "saturation_predicted", torch.cat(totals.saturation_predicted).mean().item(), **params),
        record(None, "colorization", "saturation_truth", torch.cat(totals.saturation_truth).mean().item(), **params),
    ]


def colouring_network(session: EvalSession) -> Network:
    """The run's whole network (its colorization or PIC head included) on the session's device."""
    if (session.run / RANDOM_MARKER).is_file():
        raise UserError(f"{session.run} is a random-init reference without a colorization head; evaluate a run pretrained with tasks=[colorization]")
    if "colorization" not in session.cfg.tasks and "pic" not in session.cfg.tasks:
        raise UserError(f"{session.run} was trained without the colorization task (tasks={session.cfg.tasks}); "
                        "the colorization protocol needs a run pretrained with tasks=[colorization], e.g. configs/colorization-cifar10.yaml")
    _, network = load_network(session.run, session.checkpoint)
    return network.to(session.device).eval()


def _prior_source(choice: str, loss: str) -> str:
    if choice == "run" and loss != "classification":
        raise UserError(f"colorquality.rebalance_prior=run needs a classification run (this one used loss={loss}); use test")
    return choice


@torch.no_grad()
def _colorize(network: Network, rgb: torch.Tensor, options) -> tuple[torch.Tensor, ...]:
    """RGB (B, 3, H, W) in [0, 1] → L (B, 1, H, W), predicted RGB (B, 3, H, W), predicted and true ab."""
    lab = rgb_to_lab(rgb)  # (B, 3, H, W)
    L, true_ab = lab[:, :1], lab[:, 1:]
    chunk = max(1, LOCATIONS // len(rgb))
    pred_ab = predict_small_ab(network, network.tasks["colorization"], rgb, options.decode, options.temperature, chunk)
    pred_rgb = lab_to_rgb(join_lab(L, pred_ab))  # clipped to [0, 1]
    return L, pred_rgb, pred_ab, true_ab


def accumulate(totals: Totals, rgb, pred_rgb, pred_ab, true_ab, centers: torch.Tensor) -> None:
    for i in range(0, len(rgb), METRIC_IMAGES):
        hits, pixels = binned_hits(pred_ab[i : i + METRIC_IMAGES], true_ab[i : i + METRIC_IMAGES], centers)
        totals.hits, totals.pixels = totals.hits + hits, totals.pixels + pixels
    totals.psnr.append(psnr_per_image(pred_rgb, rgb).cpu())
    totals.saturation_predicted.append(saturation_per_image(pred_rgb).cpu())
    totals.saturation_truth.append(saturation_per_image(rgb).cpu())


def bin_weights(run: Path, prior: str, pixels: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Rebalancing weights w (K,): from the run's saved prior, or from the test pixels' own smoothed prior."""
    p = load_prior(run / PRIOR_FILE).p if prior == "run" else smooth_prior(pixels, centers)
    return rebalance_weights(p.double(), REBALANCE_LAMBDA)


def _column(record: dict) -> str:
    """A PIC run measures its mode and its samples: their columns say which (``auc mode``)."""
    return f"{record['metric']} {record['decode']}" if record.get("decode") in ("mode", "sample") else record["metric"]


PROTOCOL = Protocol(
    run,
    headline=lambda cfg: {"metric": "auc"},
    column=_column,
    title="colorization quality (AuC and saturation in %)",
    whole_network=True,
    options_section="colorquality",  # colorization.* is the task's section
)
