"""A conditional PixelCNN++ without down- and up-sampling: the per-scale model of PIC and of the
Grayscale / Pyramid PixelCNNs (the thesis's chroma model: 4 gated blocks of 160 filters at 16x16).

Input: the image (B, C, H, W) on the mixture's levels in [-1, 1], plus a channel of ones so that the zero
padding differs from a value of 0; output: the mixture's parameters (B, P, H, W) for every pixel, pixel
(i, j) depending only on the pixels before it in raster order and on the conditioning map. With
``autoregressive=False`` the image is replaced by zeros: every pixel is then predicted from the
conditioning alone, the baseline that shows what the autoregressive connections add.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.pixelcnn.layers import GatedResidual, ShiftedConv, down_shift, right_shift
from chromaproxy.pixelcnn.mixture import LogisticMixture


def down_conv(in_channels: int, out_channels: int) -> ShiftedConv:
    return ShiftedConv(in_channels, out_channels, (2, 3), "down")


def down_right_conv(in_channels: int, out_channels: int) -> ShiftedConv:
    return ShiftedConv(in_channels, out_channels, (2, 2), "down-right")


class MixturePixelCNN(nn.Module):
    """What every PixelCNN over a ``mixture`` shares: ``forward(x, cond)`` gives the mixture's parameters
    per pixel, ``log_prob`` scores an image with them."""

    mixture: LogisticMixture

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None, extra: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) per image (B,), summed over pixels; extra (B, E, H, W) the mixture's side channels."""
        params = self(x, cond)
        flat = params.permute(0, 2, 3, 1).reshape(-1, params.shape[1])  # (B·H·W, P)
        values = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # (B·H·W, C)
        side = None if extra is None else extra.permute(0, 2, 3, 1).reshape(-1, extra.shape[1])  # (B·H·W, E)
        return self.mixture.log_prob(flat, values, side).reshape(x.shape[0], -1).sum(dim=1)

    def _add_input_convs(self, inputs: int, filters: int) -> None:
        self.u_init = ShiftedConv(inputs, filters, (2, 3), "down")  # the rows above
        self.ul_init_up = ShiftedConv(inputs, filters, (1, 3), "down")  # the row above, shifted down
        self.ul_init_left = ShiftedConv(inputs, filters, (2, 1), "down-right")  # the column left, shifted right

    def input_streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two streams' first maps from x (B, C + 1, H, W): u reads the rows above each pixel, ul those
        and the pixels to its left on its own row."""
        u = down_shift(self.u_init(x))
        return u, down_shift(self.ul_init_up(x)) + right_shift(self.ul_init_left(x))


class ConditionalPixelCNN(MixturePixelCNN):
    def __init__(
        self, mixture: LogisticMixture, filters: int = 160, blocks: int = 4, cond_channels: int = 0,
        dropout: float = 0.5, autoregressive: bool = True,
    ) -> None:
        super().__init__()
        self.mixture, self.autoregressive = mixture, autoregressive
        self._add_input_convs(mixture.channels + 1, filters)
        self.u_blocks = nn.ModuleList(
            GatedResidual(filters, down_conv, cond_channels=cond_channels, dropout=dropout) for _ in range(blocks))
        self.ul_blocks = nn.ModuleList(
            GatedResidual(filters, down_right_conv, filters, cond_channels, dropout) for _ in range(blocks))
        self.out = nn.Conv2d(filters, mixture.params, 1)

    def input_gate(self) -> float:
        """What multiplies the image before it enters: 0 removes the autoregressive connections."""
        return 1.0 if self.autoregressive else 0.0

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W) in [-1, 1], cond (B, cond_channels, H, W) → mixture parameters (B, P, H, W)."""
        x = torch.cat([x * self.input_gate(), torch.ones_like(x[:, :1])], dim=1)  # (B, C + 1, H, W)
        u, ul = self.input_streams(x)
        for u_block, ul_block in zip(self.u_blocks, self.ul_blocks):
            u = u_block(u, cond=cond)
            ul = ul_block(ul, aux=u, cond=cond)
        return self.out(F.elu(ul))
