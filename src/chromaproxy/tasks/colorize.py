"""Colorization as a proxy task: predict colour from lightness (Zhang et al. 2016; Larsson et al. 2016/17).

The backbone sees L only (``model.input=L``). A hypercolumn head (Larsson et al.) reads the configured
taps at ``colorization.points`` random locations per image (sparse training), concatenates them, and an
MLP (FC 1024 + ReLU; linear with ``colorization.hidden=0``) predicts, per location, one of three targets
(``colorization.loss``):

- ``regression``: ab / 110, L2;
- ``classification``: Zhang's 313 ab bins (or data-driven bins), soft-encoded (K nearest, σ = 5),
  cross-entropy weighted by class rebalancing (λ = 0.5) from the training set's smoothed prior;
- ``histogram``: Larsson's 32-bin hue and chroma histograms, KL, the hue term weighted by chroma (x5);
  ``colorization.histogram=lab`` uses 32-bin a and b histograms instead.

Zhang's network predicts at 1/4 resolution on every 4th pixel; here every loss is computed at the same
sparse random locations, so the three losses differ only in their target, as in Larsson's comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import kornia
import torch
from torch import nn

from chromaproxy.color import (
    AB_SCALE,
    bin_counts,
    chroma_weight,
    data_bins,
    decode_annealed_mean,
    decode_mean,
    decode_mode,
    histogram_target,
    hue_chroma,
    hue_weight,
    is_grayish,
    load_prior,
    pixel_weights,
    rebalance_weights,
    rgb_to_lab,
    save_prior,
    smooth_prior,
    soft_encode,
    zhang_313_bins,
)
from chromaproxy.data.augment import to_float
from chromaproxy.data.types import ImageSet
from chromaproxy.errors import UserError
from chromaproxy.models.hypercolumn import hypercolumns, pixel_centres, random_points, sample
from chromaproxy.ranges import Fraction, NonNegative, Positive, Range
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.colorize_losses import histogram_kl, regression_loss, soft_cross_entropy

PRIOR_FILE = "colorization_prior.safetensors"


@dataclass
class ColorizationOptions:
    loss: Literal["regression", "classification", "histogram"] = "classification"
    taps: list[str] = field(default_factory=lambda: ["all"])  # hypercolumn taps; all = every tap
    points: Positive[int] = 128  # sparse hypercolumn locations per image (Larsson's ECCV code: 128)
    hidden: NonNegative[int] = 1024  # hypercolumn MLP width (Larsson: FC 1024); 0 = a linear head
    bins: Literal["zhang", "data"] = "zhang"  # classification: Zhang's 313 or the training set's non-empty cells
    bin_size: Positive[float] = 10.0  # data-driven bins: ab cell size (5/10/15/20 vary the difficulty)
    soft_k: Positive[int] = 10  # soft encoding: nearest bins (released code 10, paper 5)
    sigma: Positive[float] = 5.0  # soft encoding and prior smoothing Gaussian, in ab units
    rebalance: bool = True  # classification: class-rebalancing weights
    rebalance_lambda: Fraction[float] = 0.5  # mix of the prior with a uniform distribution
    prior_images: Positive[int] = 5000  # training images the bins' empirical prior is estimated from
    temperature: Positive[float] = 0.38  # annealed-mean decoding
    histogram: Literal["hue_chroma", "lab"] = "hue_chroma"  # histogram loss: Larsson's hue/chroma, or a/b
    histogram_bins: Annotated[int, Range(2)] = 32
    skip_gray: bool = True  # zero weight for essentially gray images (Zhang's released code)
    chroma_lightness_weight: bool = False  # histogram: weight the chroma term by min(1, 3L, 3(1-L))


class ColorizationTask(Task):
    name = "colorization"
    Options = ColorizationOptions
    inputs = ("L",)
    padding_mode = "reflect"

    def __init__(self, options: ColorizationOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        self.taps = context.backbone.resolve_taps(options.taps)
        channels = sum(t.channels for t in context.backbone.feature_info if t.name in self.taps)
        if options.loss == "classification":
            self._prepare_bins(options, context)
            outputs = self.centers.shape[0]
        else:
            outputs = 2 if options.loss == "regression" else 2 * options.histogram_bins
        self.head = _head(channels, options.hidden, outputs)

    # -------------------------------------------------------------- the prior
    def _prepare_bins(self, options: ColorizationOptions, context: TaskContext) -> None:
        """Bins and rebalancing weights: estimated from the training images when training (and saved in
        the run), reloaded from the run when the network is rebuilt for inference."""
        path = context.run / PRIOR_FILE if context.run is not None else None
        if context.images is None:
            if path is None or not path.is_file():
                raise UserError(f"the colorization prior {path} is missing; it is written when the run starts training")
            prior = load_prior(path)
            centers, weights = prior.centers, prior.w
        else:
            centers, prior, weights = _estimate_prior(context.images, options)
            if path is not None:
                save_prior(path, centers, prior, weights)
        self.register_buffer("centers", centers.float())
        self.register_buffer("weights", weights.float())

    # -------------------------------------------------------------- training
    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Targets at ``points`` random locations; the trainer turns ``rgb`` into the L input.

        ``colour_weight`` (B, P) is 0 at every point of an essentially gray image (``skip_gray``): such a
        photo says nothing about the colours of what it shows, and would pull every prediction to gray.
        """
        points = random_points(rgb.shape[0], self.options.points, generator, rgb.device)  # (B, P, 2)
        colours = sample(rgb.float(), points)  # (B, P, 3)
        lab = rgb_to_lab(colours.permute(0, 2, 1).unsqueeze(2))  # (B, 3, 1, P)
        coloured = torch.ones(rgb.shape[0], device=rgb.device)
        if self.options.skip_gray:
            coloured = (~is_grayish(rgb_to_lab(rgb.float())[:, 1:])).float()  # (B,)
        colour_weight = coloured[:, None].expand(-1, self.options.points)  # (B, P)
        return rgb, {"points": points, "colour_weight": colour_weight, **self._targets(colours, lab)}

    def _targets(self, colours: torch.Tensor, lab: torch.Tensor) -> dict[str, torch.Tensor]:
        ab = lab[:, 1:]  # (B, 2, 1, P)
        if self.options.loss == "regression":
            return {"ab": ab.squeeze(2).transpose(1, 2) / AB_SCALE}  # (B, P, 2)
        if self.options.loss == "classification":
            soft = soft_encode(ab, self.centers, self.options.soft_k, self.options.sigma)  # (B, K, 1, P)
            weights = pixel_weights(soft, self.weights).squeeze(1) if self.options.rebalance else None  # (B, P)
            return {"soft": soft.squeeze(2).transpose(1, 2), **({"weights": weights} if weights is not None else {})}
        return self._histogram_targets(colours, lab)

    def _histogram_targets(self, colours: torch.Tensor, lab: torch.Tensor) -> dict[str, torch.Tensor]:
        bins = self.options.histogram_bins
        if self.options.histogram == "lab":
            a, b = ((lab[:, c, 0] / AB_SCALE + 1) / 2 for c in (1, 2))  # (B, P) each, in about [0, 1]
            first, second = a.clamp(0, 1 - 1e-6), b.clamp(0, 1 - 1e-6)
            first_weight = torch.ones_like(first)
        else:
            first, second = hue_chroma(colours.permute(0, 2, 1).unsqueeze(2))  # (B, 1, P) each
            first, second = first.squeeze(1), second.squeeze(1)  # hue, chroma (B, P)
            first_weight = hue_weight(second)
        return {
            "first": _per_location(histogram_target(first.unsqueeze(1), bins, circular=self.options.histogram != "lab")),
            "second": _per_location(histogram_target(second.unsqueeze(1), bins)),
            "first_weight": first_weight,
            "second_weight": self._second_weight(lab[:, 0, 0] / 100),
        }

    def _second_weight(self, L01: torch.Tensor) -> torch.Tensor:
        """Chroma (or b) term weight per location (B, P): Larsson's min(1, 3L, 3(1-L)) lightness weighting
        of the chroma term when ``chroma_lightness_weight`` (not in the loss Larsson et al. state, hence off
        by default), else 1."""
        if self.options.chroma_lightness_weight and self.options.histogram != "lab":
            return chroma_weight(L01)
        return torch.ones_like(L01)

    def forward(self, features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        chosen = {tap: features[tap] for tap in self.taps}
        outputs = self.head(hypercolumns(chosen, targets["points"]).float())  # (B, P, out)
        return self.losses(outputs, targets)

    def losses(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss is a mean over all B*P locations, gray images' locations counting with weight 0."""
        colour = targets["colour_weight"]  # (B, P)
        if self.options.loss == "regression":
            loss = regression_loss(outputs, targets["ab"], colour)
            return {"loss": loss, "ab_rmse": (loss / 2).sqrt().detach() * AB_SCALE}
        if self.options.loss == "classification":
            weights = colour * targets["weights"] if "weights" in targets else colour
            loss = soft_cross_entropy(outputs, targets["soft"], weights)
            accuracy = (outputs.argmax(-1) == targets["soft"].argmax(-1)).float().mean()
            return {"loss": loss, "bin_acc": accuracy.detach()}
        first, second = outputs.split(self.options.histogram_bins, dim=-1)  # (B, P, Q) each
        first_loss = histogram_kl(first, targets["first"], colour * targets["first_weight"])
        second_loss = histogram_kl(second, targets["second"], colour * targets["second_weight"])
        return {"loss": first_loss + second_loss, "first_kl": first_loss.detach(), "second_kl": second_loss.detach()}

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_ab(
        self, features: dict[str, torch.Tensor], L: torch.Tensor, decode: str = "annealed",
        temperature: float | None = None, chunk: int = 4096,
    ) -> torch.Tensor:
        """Dense ab (B, 2, H, W) at every pixel of L (B, 1, H, W) in [0, 100]: the hypercolumn head is run
        on all pixel centres, ``chunk`` locations at a time, then decoded (``annealed`` mean with
        ``temperature``, ``mode`` or ``mean``)."""
        batch, _, height, width = L.shape
        centres = pixel_centres(height, width, L.device).expand(batch, -1, -1)  # (B, H*W, 2)
        chosen = {tap: features[tap].float() for tap in self.taps}
        outputs = torch.cat([self.head(hypercolumns(chosen, centres[:, i : i + chunk])) for i in range(0, height * width, chunk)], dim=1)
        outputs = outputs.transpose(1, 2).reshape(batch, -1, height, width)  # (B, out, H, W)
        return self._decode(outputs, L, decode, temperature or self.options.temperature)

    def _decode(self, outputs: torch.Tensor, L: torch.Tensor, decode: str, temperature: float) -> torch.Tensor:
        if self.options.loss == "regression":
            return outputs * AB_SCALE
        if self.options.loss == "classification":
            decoders = {"annealed": lambda o: decode_annealed_mean(o, self.centers, temperature),
                        "mode": lambda o: decode_mode(o, self.centers), "mean": lambda o: decode_mean(o, self.centers)}
            return decoders[decode](outputs)
        first, second = _expected_bins(outputs, self.options.histogram_bins, decode, temperature)
        if self.options.histogram == "lab":
            return torch.stack([first, second], dim=1) * 2 * AB_SCALE - AB_SCALE  # (B, 2, H, W)
        return hue_chroma_to_ab(first, second, L)


def _head(channels: int, hidden: int, outputs: int) -> nn.Module:
    """Larsson's hypercolumn MLP (FC ``hidden`` + ReLU), or with ``hidden=0`` a linear head: on a single
    tap that is a dense 1x1 classifier (bilinear sampling commutes with it), which leaves the colour
    prediction to the backbone's features instead of to the head."""
    if hidden == 0:
        return nn.Linear(channels, outputs)
    return nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs))


def _expected_bins(outputs: torch.Tensor, bins: int, decode: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel values in [0, 1] of the two histograms: mode, mean, or annealed mean (the first
    histogram, hue, is circular, so its mean is taken on the circle)."""
    first, second = outputs.split(bins, dim=1)  # (B, Q, H, W) each
    centres = (torch.arange(bins, device=outputs.device, dtype=outputs.dtype) + 0.5) / bins
    if decode == "mode":
        return centres[first.argmax(1)], centres[second.argmax(1)]
    scale = temperature if decode == "annealed" else 1.0
    p_first, p_second = (first / scale).softmax(1), (second / scale).softmax(1)
    angle = 2 * torch.pi * centres.view(1, -1, 1, 1)
    hue = torch.atan2((p_first * angle.sin()).sum(1), (p_first * angle.cos()).sum(1)) / (2 * torch.pi)
    return hue.remainder(1.0), (p_second * centres.view(1, -1, 1, 1)).sum(1)


def hue_chroma_to_ab(hue: torch.Tensor, chroma: torch.Tensor, L: torch.Tensor, steps: int = 24) -> torch.Tensor:
    """ab of the RGB colour with this HSV hue and chroma (max - min) whose Lab lightness is L.

    RGB = m + chroma * f(hue), with f the pure-hue vector (max 1, min 0); L grows with the offset m, so
    m in [0, 1 - chroma] is found by bisection. hue, chroma (B, H, W) in [0, 1]; L (B, 1, H, W).
    """
    pure = kornia.color.hsv_to_rgb(torch.stack([hue * 2 * torch.pi, torch.ones_like(hue), torch.ones_like(hue)], 1))
    base = chroma.unsqueeze(1) * pure  # (B, 3, H, W) with min 0 and max chroma
    low, high = torch.zeros_like(L), (1 - chroma).unsqueeze(1)
    for _ in range(steps):
        middle = (low + high) / 2
        too_dark = rgb_to_lab(base + middle)[:, :1] < L
        low, high = torch.where(too_dark, middle, low), torch.where(too_dark, high, middle)
    return rgb_to_lab(base + (low + high) / 2)[:, 1:]


def _per_location(histogram: torch.Tensor) -> torch.Tensor:
    """(B, Q, 1, P) → (B, P, Q)."""
    return histogram.squeeze(2).permute(0, 2, 1)


@torch.no_grad()
def _estimate_prior(images: ImageSet, options: ColorizationOptions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centers (K, 2), prior p (K,), rebalancing weights w (K,)) from the first ``prior_images`` images."""
    subset = images.images[: options.prior_images]
    ab_batches = [rgb_to_lab(to_float(subset[i : i + 500]))[:, 1:] for i in range(0, len(subset), 500)]
    if options.bins == "zhang":
        centers = zhang_313_bins()
    else:
        centers = data_bins(torch.cat(ab_batches), options.bin_size)  # from (N, 2, H, W)
    prior = smooth_prior(bin_counts(ab_batches, centers), centers, options.sigma)
    weights = rebalance_weights(prior, options.rebalance_lambda) if options.rebalance else torch.ones_like(prior)
    return centers, prior, weights
