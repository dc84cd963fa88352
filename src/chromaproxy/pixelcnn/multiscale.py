"""PixelCNN++ itself (Salimans et al. 2017): the two causal streams in a U-Net over ``scales`` resolutions.

The *up* pass runs ``blocks`` gated blocks per resolution and halves the map between resolutions with
stride-2 shifted convs, keeping every block's output; the *down* pass runs back up the resolutions
(``blocks`` at the smallest, ``blocks + 1`` at the others, one per kept map), each block reading the
matching up-pass map as its auxiliary input (u reads the kept u; ul reads the current u and the kept ul)
and doubling the map between resolutions with shifted transposed convs. With ``blocks`` 5 and 3 scales
that is PixelCNN++'s 32 gated blocks plus 2 down- and 2 upsamplings per stream, the thesis's "36
residual blocks"; ``blocks`` 3 gives the Grayscale PixelCNN's conditional model of 24.

Why it exists beside ``ConditionalPixelCNN``: it is the baseline the Pyramid PixelCNN's sampling speed is
measured against (thesis §4.4). The downsampling makes every pixel's distribution depend on the whole
image so far, so the cached sampler's row/pixel buffers do not apply: it is sampled the usual way, one
full pass per pixel (``sampling.sample_naive``). A conditioning map is average-pooled to each resolution
before it biases that resolution's blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.pixelcnn.layers import GatedResidual, ShiftedConv, ShiftedDeconv
from chromaproxy.pixelcnn.mixture import LogisticMixture
from chromaproxy.pixelcnn.network import MixturePixelCNN, down_conv, down_right_conv


class MultiScalePixelCNN(MixturePixelCNN):
    def __init__(
        self, mixture: LogisticMixture, filters: int = 160, blocks: int = 5, scales: int = 3,
        cond_channels: int = 0, dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.mixture, self.scales = mixture, scales

        def pairs(count: int, u_aux: int, ul_aux: int) -> nn.ModuleList:
            return nn.ModuleList(nn.ModuleList([
                GatedResidual(filters, down_conv, u_aux, cond_channels, dropout),
                GatedResidual(filters, down_right_conv, ul_aux, cond_channels, dropout)]) for _ in range(count))

        self._add_input_convs(mixture.channels + 1, filters)
        self.up = nn.ModuleList(pairs(blocks, 0, filters) for _ in range(scales))
        self.down = nn.ModuleList(pairs(blocks + (s > 0), filters, 2 * filters) for s in range(scales))
        self.downsize = nn.ModuleList(nn.ModuleList([
            ShiftedConv(filters, filters, (2, 3), "down", stride=2),
            ShiftedConv(filters, filters, (2, 2), "down-right", stride=2)]) for _ in range(scales - 1))
        self.upsize = nn.ModuleList(nn.ModuleList([
            ShiftedDeconv(filters, filters, (2, 3), "down"),
            ShiftedDeconv(filters, filters, (2, 2), "down-right")]) for _ in range(scales - 1))
        self.out = nn.Conv2d(filters, mixture.params, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W) in [-1, 1] with H and W divisible by 2^(scales − 1), cond (B, K, H, W) or None →
        mixture parameters (B, P, H, W)."""
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)  # (B, C + 1, H, W)
        conds = [None if cond is None else F.avg_pool2d(cond, 2**s) for s in range(self.scales)]
        kept = self._up(*self.input_streams(x), conds)
        return self.out(F.elu(self._down(kept, conds)))

    def _up(self, u: torch.Tensor, ul: torch.Tensor, conds: list) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every (u, ul) pair of the up pass, largest resolution first: the input's, each block's and each
        halving's (3·blocks + 3 pairs for 3 scales)."""
        kept = [(u, ul)]
        for s, stage in enumerate(self.up):
            for u_block, ul_block in stage:
                u = u_block(u, cond=conds[s])
                ul = ul_block(ul, aux=u, cond=conds[s])
                kept.append((u, ul))
            if s < self.scales - 1:
                down_u, down_ul = self.downsize[s]
                u, ul = down_u(u), down_ul(ul)
                kept.append((u, ul))
        return kept

    def _down(self, kept: list[tuple[torch.Tensor, torch.Tensor]], conds: list) -> torch.Tensor:
        """The down pass from the smallest resolution, consuming ``kept`` from its end; returns ul (B, F, H, W)."""
        u, ul = kept.pop()
        for step, stage in enumerate(self.down):
            s = self.scales - 1 - step  # the resolution this stage runs at, 0 = full
            for u_block, ul_block in stage:
                u_skip, ul_skip = kept.pop()
                u = u_block(u, aux=u_skip, cond=conds[s])
                ul = ul_block(ul, aux=torch.cat([u, ul_skip], dim=1), cond=conds[s])
            if s > 0:
                up_u, up_ul = self.upsize[step]
                u, ul = up_u(u), up_ul(ul)
        return ul
