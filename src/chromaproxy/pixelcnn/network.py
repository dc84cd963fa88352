"""A conditional PixelCNN++ without down- and up-sampling: the per-scale model of PIC and of the
Grayscale / Pyramid PixelCNNs (the thesis's chroma model: 4 gated blocks of 160 filters at 16x16).

Input: the image (B, C, H, W) on the mixture's levels in [-1, 1], plus a channel of ones so that the zero
padding differs from a value of 0; output: the mixture's parameters (B, P, H, W) for every pixel, pixel
(i, j) depending only on the pixels before it in raster order and on the conditioning map. With
``autoregressive=False`` the image is replaced by zeros: every pixel is then predicted from the
conditioning alone, the baseline that shows what the autoregressive connections add.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.pixelcnn.layers import GatedResidual, ShiftedConv, down_shift, right_shift
from chromaproxy.pixelcnn.mixture import LogisticMixture

RGB_LEVELS = 256


def _down(in_channels: int, out_channels: int) -> ShiftedConv:
    return ShiftedConv(in_channels, out_channels, (2, 3), "down")


def _down_right(in_channels: int, out_channels: int) -> ShiftedConv:
    return ShiftedConv(in_channels, out_channels, (2, 2), "down-right")


class ConditionalPixelCNN(nn.Module):
    def __init__(
        self, mixture: LogisticMixture, filters: int = 160, blocks: int = 4, cond_channels: int = 0,
        dropout: float = 0.5, autoregressive: bool = True,
    ) -> None:
        super().__init__()
        self.mixture, self.autoregressive = mixture, autoregressive
        inputs = mixture.channels + 1
        self.u_init = ShiftedConv(inputs, filters, (2, 3), "down")  # the rows above
        self.ul_init_up = ShiftedConv(inputs, filters, (1, 3), "down")  # the row above, shifted down
        self.ul_init_left = ShiftedConv(inputs, filters, (2, 1), "down-right")  # the column left, shifted right
        self.u_blocks = nn.ModuleList(
            GatedResidual(filters, _down, cond_channels=cond_channels, dropout=dropout) for _ in range(blocks))
        self.ul_blocks = nn.ModuleList(
            GatedResidual(filters, _down_right, filters, cond_channels, dropout) for _ in range(blocks))
        self.out = nn.Conv2d(filters, mixture.params, 1)

    def input_gate(self) -> float:
        """What multiplies the image before it enters: 0 removes the autoregressive connections."""
        return 1.0 if self.autoregressive else 0.0

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W) in [-1, 1], cond (B, cond_channels, H, W) → mixture parameters (B, P, H, W)."""
        x = torch.cat([x * self.input_gate(), torch.ones_like(x[:, :1])], dim=1)  # (B, C + 1, H, W)
        u = down_shift(self.u_init(x))
        ul = down_shift(self.ul_init_up(x)) + right_shift(self.ul_init_left(x))
        for u_block, ul_block in zip(self.u_blocks, self.ul_blocks):
            u = u_block(u, cond=cond)
            ul = ul_block(ul, aux=u, cond=cond)
        return self.out(F.elu(ul))

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None, extra: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) per image (B,), summed over pixels; extra (B, E, H, W) the mixture's side channels."""
        params = self(x, cond)
        flat = params.permute(0, 2, 3, 1).reshape(-1, params.shape[1])  # (B·H·W, P)
        values = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # (B·H·W, C)
        side = None if extra is None else extra.permute(0, 2, 3, 1).reshape(-1, extra.shape[1])  # (B·H·W, E)
        return self.mixture.log_prob(flat, values, side).reshape(x.shape[0], -1).sum(dim=1)


@dataclass(frozen=True)
class Stack:
    """A PixelCNN's size: filters, gated blocks per stack, mixture components, dropout."""

    filters: int = 160
    blocks: int = 4
    components: int = 10
    dropout: float = 0.5


def rgb_pixelcnn(stack: Stack, cond_channels: int = 0) -> ConditionalPixelCNN:
    """PixelCNN++ over RGB: a logistic mixture per pixel, G's mean linear in R, B's in R and G."""
    mixture = LogisticMixture(3, stack.components, RGB_LEVELS)
    return ConditionalPixelCNN(mixture, stack.filters, stack.blocks, cond_channels, stack.dropout)
