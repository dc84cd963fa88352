"""Image-modelling tasks: the plain PixelCNN++ (``pixelcnn``), the Grayscale PixelCNN
(``grayscale_pixelcnn``) and the Pyramid PixelCNN (``pyramid_pixelcnn``), Kolesnikov & Lampert 2017.

They model the 8-bit training images themselves and read no backbone features (``reads_backbone =
False``: run them with ``model.name=pixels``). The loss is the model's bound in bits per RGB dimension,
−log₂ p(X, X̂) / (3·H·W); each factor's share of it is logged beside it as ``bpd_<part>`` (gray and colour,
or one per resolution), so the parts add up to ``bpd``. The models live in ``pixelcnn/image_models.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from chromaproxy.errors import UserError
from chromaproxy.pixelcnn.image_models import GrayscalePixelCNN, PlainPixelCNN, PyramidPixelCNN
from chromaproxy.pixelcnn.rgb import Stack
from chromaproxy.ranges import Fraction, Positive
from chromaproxy.tasks.base import Task, TaskContext


class ImageModelTask(Task):
    """What the three share: targets are the images' 8-bit values, the loss their bound in bits/dim."""

    inputs = ("rgb",)
    reads_backbone: ClassVar[bool] = False

    def make_batch(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        return rgb, (rgb.float() * 255).round().long()  # (B, 3, H, W) in 0..255

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = self.bits_per_dim_parts(image)
        bpd = torch.stack(list(parts.values())).sum(0).mean()
        return {"loss": bpd, "bpd": bpd.detach(), **{f"bpd_{k}": v.detach().mean() for k, v in parts.items()}}

    def bits_per_dim_parts(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each factor's NLL per image (B,) in bits per RGB dimension of the full image."""
        self.check_size(image.shape[-1])
        dims = image[0].numel() * math.log(2)
        return {name: nll.float() / dims for name, nll in self.model.nll_parts(image).items()}

    def check_size(self, side: int) -> None:
        """Image models have no size limit of their own; the pyramid checks that its sides halve."""


@dataclass
class PixelcnnOptions:
    filters: Positive[int] = 160  # PixelCNN++: 160
    blocks: Positive[int] = 12  # gated blocks per stack and resolution (PixelCNN++: 5 at 3 scales)
    components: Positive[int] = 10  # logistic mixture components
    dropout: Fraction[float] = 0.5
    scales: Positive[int] = 1  # U-Net resolutions (PixelCNN++: 3, i.e. 32, 16, 8); 1 = one resolution, cached sampling


class PixelcnnTask(ImageModelTask):
    """p(X) by one PixelCNN++ over RGB: the baseline the auxiliary-variable models are measured against."""

    name = "pixelcnn"
    Options = PixelcnnOptions

    def __init__(self, options: PixelcnnOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        self.model = PlainPixelCNN(
            Stack(options.filters, options.blocks, options.components, options.dropout, options.scales))

    def check_size(self, side: int) -> None:
        _check_halves("pixelcnn", side, self.options.scales)


@dataclass
class GrayscalePixelcnnOptions:
    gray_filters: Positive[int] = 160  # p(X̂), the 16-way softmax PixelCNN over the 4-bit gray image
    gray_blocks: Positive[int] = 12
    filters: Positive[int] = 160  # p(X | X̂) and the embedding f_w(X̂)
    blocks: Positive[int] = 24  # per stack and resolution (the paper preset: 3 at 3 scales, the thesis's 24 layers)
    embedding_blocks: Positive[int] = 8
    components: Positive[int] = 10
    dropout: Fraction[float] = 0.5
    scales: Positive[int] = 1  # p(X | X̂)'s U-Net resolutions (the paper preset: 3); 1 = one resolution, cached sampling


class GrayscalePixelcnnTask(ImageModelTask):
    """p(X̂) · p(X | X̂), X̂ the 4-bit gray image: parts ``gray`` and ``colour``."""

    name = "grayscale_pixelcnn"
    Options = GrayscalePixelcnnOptions

    def __init__(self, options: GrayscalePixelcnnOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        gray = Stack(options.gray_filters, options.gray_blocks, 1, options.dropout)
        colour = Stack(options.filters, options.blocks, options.components, options.dropout, options.scales)
        self.model = GrayscalePixelCNN(gray, colour, options.embedding_blocks)

    def check_size(self, side: int) -> None:
        _check_halves("grayscale_pixelcnn", side, self.options.scales)


@dataclass
class PyramidPixelcnnOptions:
    scales: Positive[int] = 3  # resolutions: 3 = 8 → 16 → 32 on CIFAR, 5 = 8 → … → 128
    base_filters: Positive[int] = 100  # the unconditional model at the smallest side (the thesis: 3 blocks, 100 filters like every scale)
    base_blocks: Positive[int] = 3
    filters: Positive[int] = 100  # every upscaling stage's PixelCNN++ and embedding
    blocks: Positive[int] = 3  # the thesis: 3 residual blocks per scale
    embedding_blocks: Positive[int] = 15
    embedding_down: list[Positive[int]] = field(default_factory=lambda: [3])  # halve after these blocks
    embedding_up: list[Positive[int]] = field(default_factory=lambda: [9, 12])  # double after these
    components: Positive[int] = 10
    dropout: Fraction[float] = 0.5


class PyramidPixelcnnTask(ImageModelTask):
    """p(X_s) Π p(X_2r | X_r): parts named by resolution (``bpd_8``, ``bpd_16``, ``bpd_32``)."""

    name = "pyramid_pixelcnn"
    Options = PyramidPixelcnnOptions

    def __init__(self, options: PyramidPixelcnnOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        base = Stack(options.base_filters, options.base_blocks, options.components, options.dropout)
        stage = Stack(options.filters, options.blocks, options.components, options.dropout)
        try:
            self.model = PyramidPixelCNN(base, stage, options.scales, options.embedding_blocks,
                                         options.embedding_down, options.embedding_up)
        except ValueError as error:
            raise UserError(f"pyramid_pixelcnn: {error} (pyramid_pixelcnn.embedding_down / embedding_up)") from None

    def check_size(self, side: int) -> None:
        smallest = 2 ** (self.options.scales - 1) * 2 ** len(self.options.embedding_down)
        if side % smallest:
            raise UserError(f"pyramid_pixelcnn: image side {side} must divide by {smallest} for "
                            f"{self.options.scales} scales; change data.image_size or pyramid_pixelcnn.scales")


def _check_halves(task: str, side: int, scales: int) -> None:
    """A U-Net of ``scales`` resolutions halves the image side scales − 1 times."""
    if side % 2 ** (scales - 1):
        raise UserError(f"{task}: image side {side} must divide by {2 ** (scales - 1)} for {task}.scales={scales}; "
                        f"change data.image_size or {task}.scales")
