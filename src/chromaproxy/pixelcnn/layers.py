"""Causal convolutions and the gated residual block of PixelCNN++ (Salimans et al. 2017) and PIC.

Two stacks remove PixelCNN's blind spot (van den Oord et al. 2016): the *down* stack sees every pixel of
the rows above (a 2x3 kernel padded on top, shifted down one row), the *down-right* stack the pixels to
the left on the current row as well (a 2x2 kernel padded top-left). Each conv exposes ``window`` — its
output at one row or one pixel from just the input it reads — which is what the cached sampler
(``pixelcnn/sampling.py``) runs; a full forward and the per-window path use the same weights.

Plain convolutions, no weight normalisation: Adam at PixelCNN++'s lr trains these small stacks stably.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def concat_elu(x: torch.Tensor) -> torch.Tensor:
    """ELU of x and of −x, concatenated on channels (PixelCNN++): no information is cut off by the ELU."""
    return F.elu(torch.cat([x, -x], dim=1))


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Move the map one row down (a zero row on top): row i then holds what row i − 1 computed."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def right_shift(x: torch.Tensor) -> torch.Tensor:
    """Move the map one column right (a zero column on the left)."""
    return F.pad(x, (1, 0))[:, :, :, :-1]


class ShiftedConv(nn.Conv2d):
    """A conv whose output at (i, j) reads input rows i − kh + 1 … i only: ``down`` centres the kernel on
    column j, ``down-right`` ends it at column j. ``pad`` = (left, right, top, bottom) zero padding. With
    ``stride`` 2 it halves the map (PixelCNN++'s downsampling), output (i, j) reading rows up to 2i."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], kind: str = "down", stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel, stride=stride)
        kh, kw = kernel
        self.pad = ((kw - 1) // 2, (kw - 1) // 2, kh - 1, 0) if kind == "down" else (kw - 1, 0, kh - 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))

    def window(self, padded: torch.Tensor, i: int, j: int | None = None) -> torch.Tensor:
        """Output row i (j None: (B, out, 1, W)) or pixel (i, j) ((B, out, 1, 1)) from the input padded by
        ``self.pad`` (B, in, H + top, W + left + right): the rows and columns that output reads, no more."""
        kh, kw = self.kernel_size
        rows = padded[:, :, i : i + kh]
        return super().forward(rows if j is None else rows[:, :, :, j : j + kw])


class ShiftedDeconv(nn.ConvTranspose2d):
    """PixelCNN++'s upsampling: a stride-2 transposed conv that doubles the map, cropped so that input
    (i, j) reaches output rows 2i and 2i + 1 only (never a row above) and, for ``down-right``, columns
    2j and 2j + 1 (never one to the left); ``down`` spreads it over columns 2j − 1 … 2j + 1."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], kind: str = "down") -> None:
        super().__init__(in_channels, out_channels, kernel, stride=2, output_padding=1)
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        full = super().forward(x)  # (B, C, 2H + kh - 1, 2W + kw - 1)
        height, width = full.shape[-2] - kh + 1, full.shape[-1] - kw + 1
        left = (kw - 1) // 2 if self.kind == "down" else 0
        return full[:, :, :height, left : left + width]  # (B, C, 2H, 2W)


class GatedResidual(nn.Module):
    """x + a·σ(b), [a, b] = conv₂(concat_elu(conv₁(concat_elu(x)) + nin(concat_elu(aux)))) + proj(cond).

    ``aux`` is the down stack's map fed into the down-right stack; ``cond`` a conditioning map (PIC's
    g(L), the Grayscale PixelCNN's f_w(X̂)) whose 1x1 projection biases the block's gates. ``conv`` builds
    the block's convolutions: shifted ones in a PixelCNN, plain (dilated) ones in an embedding network."""

    def __init__(self, channels: int, conv, aux_channels: int = 0, cond_channels: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv_in, self.conv_out = conv(2 * channels, channels), conv(2 * channels, 2 * channels)
        self.aux_in = nn.Conv2d(2 * aux_channels, channels, 1) if aux_channels else None
        self.cond_in = nn.Conv2d(cond_channels, 2 * channels, 1, bias=False) if cond_channels else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, aux: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.conv_in(concat_elu(x))
        if self.aux_in is not None:
            hidden = hidden + self.aux_in(concat_elu(aux))
        return self.gate(x, self.conv_out(self.dropout(concat_elu(hidden))), self.bias(cond))

    def bias(self, cond: torch.Tensor | None) -> torch.Tensor | float:
        """The conditioning's contribution to the gates (B, 2C, H, W); a sampler computes it once."""
        return self.cond_in(cond) if self.cond_in is not None else 0.0

    @staticmethod
    def gate(x: torch.Tensor, gates: torch.Tensor, bias: torch.Tensor | float) -> torch.Tensor:
        """The residual update x + a·σ(b) from the second conv's output (B, 2C, …) plus the bias."""
        a, b = (gates + bias).chunk(2, dim=1)  # (B, C, …) each
        return x + a * torch.sigmoid(b)


class GatedStack(nn.Sequential):
    """Gated residual blocks of plain 3x3 convs (no shifts, no conditioning): the embedding networks' flow,
    PIC's g(L) and the Grayscale / Pyramid PixelCNNs' f_w(X̂). Each block's forward takes the map alone."""

    def __init__(self, channels: int, blocks: int, dilation: int = 1, dropout: float = 0.0) -> None:
        def conv(in_channels: int, out_channels: int) -> nn.Conv2d:
            return nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)

        super().__init__(*(GatedResidual(channels, conv, dropout=dropout) for _ in range(blocks)))
