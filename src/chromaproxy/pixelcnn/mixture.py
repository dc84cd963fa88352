"""Discretized mixture of logistics over C channels of a pixel (Salimans et al. 2017, PixelCNN++), with the
channel dependencies linear in the means.

Values live on ``levels`` equally spaced points of [-1, 1] (256 for 8-bit data). Component k gives channel
c the logistic (mean_kc, scale_kc) with

    mean_kc = μ_kc + Σ_{j<c} γ_kcj · x_j + Σ_e β_kce · extra_e,

so one component is a full joint distribution over the pixel's channels: PixelCNN++'s G on R and B on R, G
for RGB, PIC's b on a for chroma, and with ``extra`` channels the pixel's known side information (PIC: the
lightness L under the chroma). A level's probability is the logistic's mass over its bin, the first and last
bins reaching to -∞ and +∞, so the probabilities of all levels^C values sum to one exactly.

Parameter layout per pixel (``params`` dim 1): logits (K), μ (K·C), log scales (K·C), coefficients (K·G),
G = C(C-1)/2 + C·E, the coefficients of each channel in order (its earlier channels, then the extras).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from chromaproxy.pixelcnn.levels import Levels

LOG_SCALE_MIN = -7.0  # PixelCNN++: keeps a component's bin mass finite while it sharpens


class LogisticMixture(Levels):
    """The distribution family; holds shapes only, so one instance serves a whole network."""

    def __init__(self, channels: int, components: int = 10, levels: int = 256, extra: int = 0) -> None:
        super().__init__(levels)
        self.channels, self.components, self.extra = channels, components, extra
        self.coefficients = channels * (channels - 1) // 2 + channels * extra

    @property
    def params(self) -> int:
        """Numbers per pixel: PIC's chroma (C = 2, E = 1, K = 10) needs 80, RGB (C = 3) 100."""
        return self.components * (1 + 2 * self.channels + self.coefficients)

    # ------------------------------------------------------------ parameters
    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """params (N, P) → logits (N, K), μ (N, K, C), log scales (N, K, C), coefficients (N, K, G)."""
        k, c = self.components, self.channels
        logits, mu, log_s, coeff = params.split([k, k * c, k * c, k * self.coefficients], dim=1)
        n = params.shape[0]
        log_s = log_s.reshape(n, k, c).clamp(min=LOG_SCALE_MIN)  # (N, K, C)
        return logits, mu.reshape(n, k, c), log_s, torch.tanh(coeff.reshape(n, k, self.coefficients))

    def mean(self, mu: torch.Tensor, coeff: torch.Tensor, x: torch.Tensor, extra: torch.Tensor, c: int) -> torch.Tensor:
        """Channel c's component means (N, K) given the pixel's earlier channels x (N, ≥c) and extras (N, E)."""
        start = c * (c - 1) // 2 + c * self.extra
        known = torch.cat([x[:, :c], extra], dim=1)  # (N, c + E)
        return mu[:, :, c] + (coeff[:, :, start : start + c + self.extra] * known[:, None, :]).sum(-1)

    # ------------------------------------------------------------ likelihood
    def log_prob(
        self, params: torch.Tensor, x: torch.Tensor, extra: torch.Tensor | None = None, channels: int | None = None,
    ) -> torch.Tensor:
        """log p(x) per pixel. params (N, P); x (N, C) on the levels; extra (N, E) → (N,). ``channels`` = c
        gives the marginal log p(x_0 … x_{c-1}) of the first c channels (the others summed out), which is
        how the causal-order tests read one channel's dependence on the others."""
        extra = _none_to_empty(extra, x)
        logits, mu, log_s, coeff = self.split(params)
        joint = F.log_softmax(logits, dim=1)  # (N, K)
        for c in range(self.channels if channels is None else channels):
            joint = joint + self.channel_log_prob(self.mean(mu, coeff, x, extra, c), log_s[:, :, c], x[:, c : c + 1])
        return torch.logsumexp(joint, dim=1)

    def channel_log_prob(self, mean: torch.Tensor, log_s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log P_k(level x) of one channel: mean, log_s (N, K); x broadcastable to them → (N, K).

        A middle bin's mass σ(plus) − σ(minus) equals σ(plus)·(1 − e^{minus − plus})·σ(−minus); summed
        in log space it stays exact where both σ are close to 1 or both close to 0, where the plain
        difference cancels to zero (PixelCNN++ falls back to the density there; no fallback is needed)."""
        inv_s = torch.exp(-log_s)
        centred = x - mean
        plus, minus = inv_s * (centred + self.half_bin), inv_s * (centred - self.half_bin)
        log_cdf_plus = -F.softplus(-plus)  # log σ(plus): the first level's mass
        log_survival_minus = -F.softplus(minus)  # log (1 − σ(minus)): the last level's mass
        log_gap = torch.log(-torch.expm1((minus - plus).clamp(max=-1e-12)))  # log(1 − e^{minus − plus})
        middle = log_cdf_plus + log_gap + log_survival_minus
        lowest, highest = x <= -1 + self.half_bin / 2, x >= 1 - self.half_bin / 2
        return torch.where(lowest, log_cdf_plus, torch.where(highest, log_survival_minus, middle))

    # ------------------------------------------------------------ decoding
    def noise_size(self) -> int:
        """Uniform numbers one pixel's draw consumes: one per component (Gumbel), one per channel."""
        return self.components + self.channels

    def draw(
        self, params: torch.Tensor, extra: torch.Tensor | None, noise: torch.Tensor, how: str = "sample",
        temperature: float = 1.0, variance_reduction: float = 0.0,
    ) -> torch.Tensor:
        """One value per channel (N, C) on the levels, channel by channel so later means see earlier values.

        ``noise`` (N, K + C) uniforms in (0, 1) make the draw a pure function of its inputs (cached and
        naive sampling agree for the same numbers). ``how``: ``sample`` (component by Gumbel-max of
        logits / T, then a logistic draw with scale · T), ``component-mode`` (the thesis's MAP sampling:
        a sampled component's mode), or ``mode`` (per pixel, each channel's most probable level given the
        earlier ones: exact over the levels). ``variance_reduction`` r lowers every component's log-scale
        by r before a ``sample`` draw (the thesis's Figure 4.4: sharper, more coherent samples)."""
        extra = _none_to_empty(extra, params)
        logits, mu, log_s, coeff = self.split(params)
        if how == "mode":
            return self._greedy_mode(logits, mu, log_s, coeff, extra)
        gumbel = -torch.log(-torch.log(noise[:, : self.components]))
        chosen = (logits / temperature + gumbel).argmax(dim=1, keepdim=True)  # (N, 1)
        x = torch.zeros(params.shape[0], self.channels, dtype=params.dtype, device=params.device)
        for c in range(self.channels):
            mean = self.mean(mu, coeff, x, extra, c).gather(1, chosen)[:, 0]  # (N,)
            if how == "sample":
                u = noise[:, self.components + c]
                scale = torch.exp(log_s[:, :, c].gather(1, chosen)[:, 0] - variance_reduction) * temperature
                mean = mean + scale * (torch.log(u) - torch.log1p(-u))
            x[:, c] = self.quantize(mean)
        return x

    def _greedy_mode(self, logits, mu, log_s, coeff, extra) -> torch.Tensor:
        """Per channel: argmax over levels of p(x_c | x_<c) = Σ_k w_k P_k(x_c), w_k ∝ π_k Π_{j<c} P_k(x_j)."""
        grid = self.value(torch.arange(self.levels, device=mu.device), mu.dtype)  # (L,)
        weights = F.log_softmax(logits, dim=1)  # (N, K)
        x = torch.zeros(mu.shape[0], self.channels, dtype=mu.dtype, device=mu.device)
        for c in range(self.channels):
            mean, scale = self.mean(mu, coeff, x, extra, c), log_s[:, :, c]
            per_level = self.channel_log_prob(mean[..., None], scale[..., None], grid)  # (N, K, L)
            x[:, c] = grid[torch.logsumexp(weights[..., None] + per_level, dim=1).argmax(dim=1)]
            weights = weights + self.channel_log_prob(mean, scale, x[:, c : c + 1])
        return x


def _none_to_empty(extra: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return extra if extra is not None else like.new_zeros(like.shape[0], 0)


def bits_per_dim(log_prob: torch.Tensor, dims: int) -> torch.Tensor:
    """Summed log-likelihood in nats over ``dims`` discrete dimensions → bits per dimension."""
    return -log_prob / (dims * math.log(2))
