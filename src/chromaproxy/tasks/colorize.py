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

Each target is one type in ``colour_targets`` (its targets, loss and decoding); the classification bins
and their prior come from ``colorize_prior``. Zhang's network predicts at 1/4 resolution on every 4th
pixel; here every loss is computed at the same sparse random locations, so the three losses differ only in
their target, as in Larsson's comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import torch
from torch import nn

from chromaproxy.color import ANNEALED_T, is_grayish, rgb_to_lab
from chromaproxy.models.hypercolumn import hypercolumns, pixel_centres, random_points, sample
from chromaproxy.ranges import Fraction, NonNegative, Positive, Range
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.colorize_prior import run_prior
from chromaproxy.tasks.colour_targets import AbBins, AbRegression, ColourHistograms


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
    temperature: Positive[float] = ANNEALED_T  # annealed-mean decoding
    histogram: Literal["hue_chroma", "lab"] = "hue_chroma"  # histogram loss: Larsson's hue/chroma, or a/b
    histogram_bins: Annotated[int, Range(2)] = 32
    skip_gray: bool = True  # zero weight for essentially gray images (Zhang's released code)
    chroma_lightness_weight: bool = False  # histogram: weight the chroma term by min(1, 3L, 3(1-L))


class ColorizationTask(Task):
    name = "colorization"
    Options = ColorizationOptions
    inputs = ("L",)
    padding_mode = "reflect"
    decodes = ("annealed", "mode", "mean")  # how predict_ab reads ab off the head; the first is the default

    def __init__(self, options: ColorizationOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        self.taps = context.backbone.resolve_taps(options.taps)
        channels = sum(t.channels for t in context.backbone.feature_info if t.name in self.taps)
        self.target = _colour_target(options, context)
        self.head = _head(channels, options.hidden, self.target.outputs)

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
        return rgb, {"points": points, "colour_weight": colour_weight, **self.target.targets(colours, lab)}

    def forward(self, features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        chosen = {tap: features[tap] for tap in self.taps}
        outputs = self.head(hypercolumns(chosen, targets["points"]).float())  # (B, P, out)
        return self.losses(outputs, targets)

    def losses(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every loss is a mean over all B*P locations, gray images' locations counting with weight 0."""
        return self.target.loss(outputs, targets, targets["colour_weight"])

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
        return self.target.decode(outputs, L, decode, temperature or self.options.temperature)


def _colour_target(options: ColorizationOptions, context: TaskContext) -> nn.Module:
    if options.loss == "regression":
        return AbRegression()
    if options.loss == "histogram":
        return ColourHistograms(options.histogram_bins, options.histogram == "lab", options.chroma_lightness_weight)
    centers, weights = run_prior(context.images, context.run, options)
    return AbBins(centers, weights if options.rebalance else None, options.soft_k, options.sigma)


def _head(channels: int, hidden: int, outputs: int) -> nn.Module:
    """Larsson's hypercolumn MLP (FC ``hidden`` + ReLU), or with ``hidden=0`` a linear head: on a single
    tap that is a dense 1x1 classifier (bilinear sampling commutes with it), which leaves the colour
    prediction to the backbone's features instead of to the head."""
    if hidden == 0:
        return nn.Linear(channels, outputs)
    return nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs))
