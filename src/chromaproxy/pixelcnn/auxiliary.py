"""Auxiliary variables X̂ = ψ(X) and their embedding f_w(X̂) (Kolesnikov & Lampert 2017, §4.2, Eq. 4.2-4.4).

p(X, X̂) = p(X̂) · p(X | X̂) for a deterministic ψ, so −log p(X, X̂) = −log p(X̂) − log p(X | X̂) and, as
p(X̂ | X) = 1, it bounds −log p(X) from above. Two choices of ψ, on 8-bit images held as level indices:

- ``quantised_gray``: the 4-bit gray image, ITU-R 601 luma of the 8-bit channels rounded to 0..255, then
  its top 4 bits (0..15): what p(X̂) has to model is the layout of light and dark alone.
- ``half_resolution``: each 2x2 block's mean, rounded to the nearest integer; applied recursively it gives
  the Pyramid PixelCNN's chain 32 → 16 → 8.

``Embedding`` is f_w: one flow of gated residual blocks without shifts (every position sees all of X̂),
optionally halving or doubling the map after given blocks; its output biases every gated block of the
conditional PixelCNN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.pixelcnn.layers import GatedStack

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601
GRAY_LEVELS = 16  # 4 bits


def quantised_gray(image: torch.Tensor) -> torch.Tensor:
    """8-bit RGB (B, 3, H, W) of integers 0..255 → 4-bit gray indices (B, 1, H, W) in 0..15."""
    weights = torch.tensor(LUMA, dtype=torch.float64, device=image.device).view(1, 3, 1, 1)
    luma = (image.double() * weights).sum(1, keepdim=True).round().clamp(0, 255).long()  # (B, 1, H, W)
    return luma // (256 // GRAY_LEVELS)


def half_resolution(image: torch.Tensor) -> torch.Tensor:
    """8-bit images (B, C, H, W) of integers → (B, C, H/2, W/2): each 2x2 block's mean, rounded half up."""
    if image.shape[-1] % 2 or image.shape[-2] % 2:
        raise ValueError(f"half_resolution needs even sides, got {tuple(image.shape[-2:])}")
    return (F.avg_pool2d(image.double(), 2, divisor_override=1) / 4 + 0.5).floor().long()


class Embedding(nn.Module):
    """f_w(X̂): a 3x3 conv from ``in_channels`` to ``filters``, then ``blocks`` gated residual blocks; after
    block i (counted from 1) the map is halved (stride-2 conv) for i in ``down_after`` and doubled
    (stride-2 transposed conv) for i in ``up_after``. The thesis's Pyramid embedding is 15 blocks, down
    after 3, up after 9 and 12: the output is twice the input's side, the next resolution's grid."""

    def __init__(
        self, in_channels: int, filters: int, blocks: int, down_after: Sequence[int] = (),
        up_after: Sequence[int] = (), dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not all(1 <= i <= blocks for i in (*down_after, *up_after)):
            raise ValueError(f"embedding resampling after blocks {list(down_after)} / {list(up_after)}: each must be 1..{blocks}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels + 1, filters, 3, padding=1)]
        for i in range(1, blocks + 1):
            layers.append(GatedStack(filters, 1, dropout=dropout))
            if i in down_after:
                layers.append(nn.Conv2d(filters, filters, 3, stride=2, padding=1))
            if i in up_after:
                layers.append(nn.ConvTranspose2d(filters, filters, 3, stride=2, padding=1, output_padding=1))
        self.layers = nn.Sequential(*layers)
        self.out_channels = filters
        self.scale = 2 ** (len(up_after) - len(down_after))  # output side / input side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) in [-1, 1] → (B, filters, H·scale, W·scale); a channel of ones marks the padding."""
        return self.layers(torch.cat([x, torch.ones_like(x[:, :1])], dim=1))
