"""Image models over 8-bit RGB (Kolesnikov & Lampert 2017, §4.3-4.4): the plain PixelCNN++ and the two
PixelCNNs with an auxiliary variable, each a set of factors with disjoint parameters.

Every model gives ``nll_parts(image)``: the negative log-likelihood in nats per image of each factor, in
the order they are sampled; their sum is −log p(X) for the plain model and the bound −log p(X, X̂) for the
others. Training the sum trains the factors separately and in parallel (no parameter is shared), as the
thesis does. ``sample`` draws images factor by factor, each with its network's fastest exact sampler.
Images are (B, 3, H, W) long tensors of 0..255.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from chromaproxy.pixelcnn.auxiliary import GRAY_LEVELS, Embedding, half_resolution, quantised_gray
from chromaproxy.pixelcnn.categorical import Categorical
from chromaproxy.pixelcnn.levels import to_values
from chromaproxy.pixelcnn.network import ConditionalPixelCNN, MixturePixelCNN
from chromaproxy.pixelcnn.rgb import RGB_LEVELS, Stack, rgb_pixelcnn
from chromaproxy.pixelcnn.sampling import draw_noise, sample_naive, sampler_for


@dataclass(frozen=True)
class Decode:
    """How a sampler reads values off the distributions: ``how`` = ``sample`` or ``component-mode`` (MAP
    sampling: a sampled component's mode), ``temperature``, and ``variance_reduction`` (log-scales lowered)."""

    how: str = "sample"
    temperature: float = 1.0
    variance_reduction: float = 0.0


def draw(net: MixturePixelCNN, cond: torch.Tensor | None, shape: tuple[int, int, int], generator, decode: Decode) -> torch.Tensor:
    """(B, C, H, W) level indices drawn from ``net`` for ``shape`` = (B, H, W), conditioned on ``cond``."""
    batch, height, width = shape
    device = next(net.parameters()).device
    noise = draw_noise(batch, net, height, width, generator, device)
    values = sampler_for(net)(net, cond, None, noise, decode.how, decode.temperature, decode.variance_reduction)
    return net.mixture.index(values)


def gray_picture(gray: torch.Tensor) -> torch.Tensor:
    """4-bit gray indices (B, 1, H, W) → the gray RGB picture (B, 3, H, W) of 0..255 they stand for."""
    return (gray * 255 // (GRAY_LEVELS - 1)).expand(-1, 3, -1, -1)


class ImageModel(nn.Module):
    """What the three models share: ``sample`` is the last of ``sample_stages`` (each factor's draw)."""

    def sample(self, batch: int, size: int, generator: torch.Generator, decode: Decode = Decode()) -> torch.Tensor:
        """(B, 3, size, size) images of 0..255."""
        return self.sample_stages(batch, size, generator, decode)[-1]

    def samples_naively(self) -> bool:
        """Whether a factor is drawn one full pass per pixel (a U-Net): minutes per image at paper size on a CPU."""
        return any(sampler_for(m) is sample_naive for m in self.modules() if isinstance(m, MixturePixelCNN))


class PlainPixelCNN(ImageModel):
    """p(X) by one PixelCNN++ over RGB: PixelCNN++'s U-Net with ``stack.scales`` > 1, else the gated
    stacks of PIC at one resolution."""

    def __init__(self, stack: Stack) -> None:
        super().__init__()
        self.net = rgb_pixelcnn(stack)

    def nll_parts(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": -self.net.log_prob(to_values(image, RGB_LEVELS), None)}

    def sample_stages(self, batch: int, size: int, generator: torch.Generator, decode: Decode = Decode()) -> list[torch.Tensor]:
        return [draw(self.net, None, (batch, size, size), generator, decode)]


class GrayscalePixelCNN(ImageModel):
    """p(X̂) · p(X | X̂), X̂ the 4-bit gray image: a 16-way softmax PixelCNN, then PixelCNN++ over RGB with
    f_w(X̂) biasing every gated block."""

    def __init__(self, gray: Stack, colour: Stack, embedding_blocks: int) -> None:
        super().__init__()
        self.gray = ConditionalPixelCNN(Categorical(GRAY_LEVELS), gray.filters, gray.blocks, 0, gray.dropout)
        self.embedding = Embedding(1, colour.filters, embedding_blocks, dropout=colour.dropout)
        self.colour = rgb_pixelcnn(colour, self.embedding.out_channels)

    def nll_parts(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        gray = to_values(quantised_gray(image), GRAY_LEVELS)  # (B, 1, H, W)
        return {"gray": -self.gray.log_prob(gray, None),
                "colour": -self.colour.log_prob(to_values(image, RGB_LEVELS), self.embedding(gray))}

    def colourize(self, gray: torch.Tensor, generator: torch.Generator, decode: Decode = Decode()) -> torch.Tensor:
        """X ~ p(X | X̂) for 4-bit gray indices (B, 1, H, W): the thesis's Figure 4.3."""
        cond = self.embedding(to_values(gray, GRAY_LEVELS))
        return draw(self.colour, cond, (gray.shape[0], *gray.shape[-2:]), generator, decode)

    def sample_stages(self, batch: int, size: int, generator: torch.Generator, decode: Decode = Decode()) -> list[torch.Tensor]:
        """[X̂ shown as gray RGB of 0..255, X]."""
        gray = draw(self.gray, None, (batch, size, size), generator, decode)
        return [gray_picture(gray), self.colourize(gray, generator, decode)]


class PyramidPixelCNN(ImageModel):
    """p(X_s) Π p(X_{2r} | X_r): an unconditional PixelCNN++ at the smallest side s, then for each doubling
    a light PixelCNN++ conditioned on f_w(X_r), an embedding that doubles the map. ``scales`` resolutions."""

    def __init__(
        self, base: Stack, stage: Stack, scales: int, embedding_blocks: int, down_after: Sequence[int] = (),
        up_after: Sequence[int] = (1,),
    ) -> None:
        super().__init__()
        if len(up_after) != len(down_after) + 1:
            raise ValueError("a pyramid embedding must double its input's side: one more up than down")
        self.base = rgb_pixelcnn(base)
        self.embeddings = nn.ModuleList(
            Embedding(3, stage.filters, embedding_blocks, down_after, up_after, stage.dropout) for _ in range(scales - 1))
        self.stages = nn.ModuleList(rgb_pixelcnn(stage, stage.filters) for _ in range(scales - 1))

    def pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The images the factors model, smallest first: X_s, …, X_{H/2}, X."""
        levels = [image]
        for _ in self.stages:
            levels.insert(0, half_resolution(levels[0]))
        return levels

    def nll_parts(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        levels = [to_values(x, RGB_LEVELS) for x in self.pyramid(image)]
        parts = {str(levels[0].shape[-1]): -self.base.log_prob(levels[0], None)}
        for embedding, stage, small, large in zip(self.embeddings, self.stages, levels, levels[1:]):
            parts[str(large.shape[-1])] = -stage.log_prob(large, embedding(small))
        return parts

    def sample_stages(self, batch: int, size: int, generator: torch.Generator, decode: Decode = Decode()) -> list[torch.Tensor]:
        """[X_s, …, X_size]: the smallest image first, then each stage given the one before."""
        side = size // 2 ** len(self.stages)
        images = [draw(self.base, None, (batch, side, side), generator, decode)]
        for embedding, stage in zip(self.embeddings, self.stages):
            side *= 2
            images.append(draw(stage, embedding(to_values(images[-1], RGB_LEVELS)), (batch, side, side), generator, decode))
        return images
