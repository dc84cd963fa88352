"""PIC, probabilistic image colorization (Royer, Kolesnikov, Lampert 2017; thesis §5.3-5.4).

p(ab | L) = Π_i p(ab_i | ab_<i, L): the backbone is the embedding network g(L) (``model.name=pic_embed``,
``model.input=L``), and this task's head is a conditional PixelCNN++ f over the chroma at the resolution
of g's deepest map (16x16 for 32 px: factor 2), g's map biasing every gated block. Each chroma pixel is a
mixture of ``pic.components`` discretized logistics over (a, b) on ``pic.levels`` levels, b's mean linear
in a and both means linear in the pixel's L (``pixelcnn.mixture``).

Targets: ab of the image averaged over factor x factor cells, scaled by 1/110 into [-1, 1] and quantised
to the levels; the loss is the exact negative log-likelihood in bits per chroma dimension,
NLL / (ln 2 · H'·W'·2), which is also the reported ``bpd``. ``pic.autoregressive=false`` removes f's
view of earlier chroma (each pixel predicted from g(L) alone): the baseline of the quality target.

Decoding (``predict_ab``): ``sample`` (temperature T), ``component-mode`` (the thesis's "MAP sampling":
a sampled component's mode) and ``mode`` (per pixel the most probable chroma given the pixels before it);
generation uses the cached sampler. Train with ``train.ema`` (Polyak averaging): evaluation and sampling
load the averaged weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F

from chromaproxy.color import rgb_to_lab
from chromaproxy.errors import UserError
from chromaproxy.pixelcnn.mixture import LogisticMixture, bits_per_dim
from chromaproxy.pixelcnn.network import ConditionalPixelCNN
from chromaproxy.pixelcnn.sampling import draw_noise, sample_cached
from chromaproxy.ranges import Fraction, Positive, Range
from chromaproxy.tasks.base import Task, TaskContext

AB_SCALE = 110.0  # ab / 110 lies in [-1, 1] for every sRGB colour


@dataclass
class PicOptions:
    filters: Positive[int] = 160  # PixelCNN++ filters (thesis, CIFAR: 160)
    blocks: Positive[int] = 4  # gated residual blocks per stack (thesis, CIFAR: 4)
    components: Positive[int] = 10  # logistic mixture components
    levels: Annotated[int, Range(2)] = 256  # quantisation levels of a and of b
    dropout: Fraction[float] = 0.5
    autoregressive: bool = True  # false: every chroma pixel from g(L) alone (the independent baseline)
    tap: str | None = None  # the embedding tap that conditions f (None = the deepest)
    temperature: Positive[float] = 1.0  # sampling temperature (logits / T, logistic scales x T)


class PicTask(Task):
    name = "pic"
    Options = PicOptions
    inputs = ("L",)
    padding_mode = "reflect"
    decodes = ("sample", "mode", "component-mode")  # how predict_ab reads ab off the model; the first is the default

    def __init__(self, options: PicOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.factor = context.backbone.tap_info(self.taps[0]).stride
        self.mixture = LogisticMixture(2, options.components, options.levels, extra=1)
        self.pixelcnn = ConditionalPixelCNN(
            self.mixture, options.filters, options.blocks, channels, options.dropout, options.autoregressive)

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        ab, L = self.chroma(rgb.float())
        return rgb, {"ab": ab, "L": L}

    def chroma(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] → quantised ab / 110 and (L − 50) / 50, both at H/f x W/f."""
        if rgb.shape[-1] % self.factor or rgb.shape[-2] % self.factor:
            raise UserError(f"pic: image side {rgb.shape[-1]} does not divide by the chroma factor {self.factor}; "
                            f"use a data.image_size that does")
        lab = F.avg_pool2d(rgb_to_lab(rgb), self.factor)  # (B, 3, H/f, W/f)
        return self.mixture.quantize(lab[:, 1:] / AB_SCALE), (lab[:, :1] - 50) / 50

    def forward(self, features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cond = self.conditioning(features, targets["ab"])
        log_prob = self.pixelcnn.log_prob(targets["ab"], cond, targets["L"])  # (B,)
        bpd = bits_per_dim(log_prob, targets["ab"][0].numel()).mean()
        return {"loss": bpd, "bpd": bpd.detach()}

    def conditioning(self, features: dict[str, torch.Tensor], ab: torch.Tensor) -> torch.Tensor:
        cond = features[self.taps[0]].float()
        if cond.shape[-2:] != ab.shape[-2:]:
            raise UserError(f"pic: tap {self.taps[0]} gives a {tuple(cond.shape[-2:])} map for a "
                            f"{tuple(ab.shape[-2:])} chroma grid; condition on a tap at the chroma resolution")
        return cond

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def sample_chroma(
        self, features: dict[str, torch.Tensor], L_small: torch.Tensor, decode: str = "sample",
        temperature: float | None = None, generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """ab / 110 on the chroma grid (B, 2, H', W') for L (B, 1, H', W') scaled to [-1, 1]."""
        cond = features[self.taps[0]].float()
        batch, _, height, width = cond.shape
        generator = generator or torch.Generator(cond.device).manual_seed(0)
        noise = draw_noise(batch, self.pixelcnn, height, width, generator, cond.device)
        return sample_cached(self.pixelcnn, cond, L_small, noise, decode, temperature or self.options.temperature)

    def predict_ab(
        self, features: dict[str, torch.Tensor], L: torch.Tensor, decode: str = "sample",
        temperature: float | None = None, chunk: int | None = None, generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """ab (B, 2, H, W) in ab units for L (B, 1, H, W) in [0, 100]: drawn on the chroma grid, then
        upsampled bilinearly (the feed-forward colorizer's interface; ``chunk`` is not needed here)."""
        L_small = (F.avg_pool2d(L, self.factor) - 50) / 50  # (B, 1, H', W')
        ab = self.sample_chroma(features, L_small, decode, temperature, generator) * AB_SCALE
        return F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
