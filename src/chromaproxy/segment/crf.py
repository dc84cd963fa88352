"""A fully-connected CRF (Krähenbühl & Koltun 2011) with exact mean-field inference in torch.

At SEC's output sizes (≤ 64 x 64 = 4,096 positions) the full pairwise kernel matrix (N x N, 64 MB in
float32) fits in memory, so each mean-field step is one matrix product: exact, differentiable and
batched, with no permutohedral-lattice approximation and no compiled dependency (pydensecrf does not
build on current Python). Potts compatibility; kernels as SEC's settings (REFERENCE.md):
w1 exp(−|p_i − p_j|²/2θα² − |I_i − I_j|²/2θβ²) + w2 exp(−|p_i − p_j|²/2θγ²), without self-messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_POSITIONS = 64 * 64  # beyond this the N x N kernel grows past what a CPU batch should hold


@dataclass(frozen=True)
class CrfParams:
    """Positions in output pixels; ``scale`` s divides the spatial widths (SEC: θα = 80/s, θγ = 3/s, s = 12)."""

    w_bilateral: float = 10.0
    theta_alpha: float = 80.0
    theta_beta: float = 13.0  # on colours in 0..255
    w_gaussian: float = 3.0
    theta_gamma: float = 3.0
    scale: float = 12.0
    iterations: int = 10


def kernel_matrix(rgb: torch.Tensor, params: CrfParams) -> torch.Tensor:
    """(B, N, N) pairwise kernel over the N = H*W positions of ``rgb`` (B, 3, H, W) in 0..255; zero diagonal."""
    b, _, h, w = rgb.shape
    if h * w > MAX_POSITIONS:
        raise ValueError(f"the exact dense CRF takes at most {MAX_POSITIONS} positions, got {h}x{w}")
    ys, xs = torch.meshgrid(torch.arange(h, device=rgb.device), torch.arange(w, device=rgb.device), indexing="ij")
    pos = torch.stack([ys, xs], -1).view(1, h * w, 2).to(rgb.dtype).expand(b, -1, -1)  # (B, N, 2)
    colour = rgb.flatten(2).transpose(1, 2)  # (B, N, 3)
    d_pos, d_col = torch.cdist(pos, pos) ** 2, torch.cdist(colour, colour) ** 2  # (B, N, N)
    alpha, gamma = params.theta_alpha / params.scale, params.theta_gamma / params.scale
    kernel = params.w_bilateral * torch.exp(-d_pos / (2 * alpha**2) - d_col / (2 * params.theta_beta**2))
    kernel = kernel + params.w_gaussian * torch.exp(-d_pos / (2 * gamma**2))
    return kernel * (1 - torch.eye(h * w, device=rgb.device, dtype=rgb.dtype))


def mean_field_step(unary: torch.Tensor, q: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """One update: Q ← softmax(−U − Potts(K Q)) with U (B, K, N) unary energies, Q (B, K, N), K (B, N, N).
    Under Potts, label l pays for the mass its neighbours put on every other label: Σ_{l'≠l} m_l'."""
    messages = torch.bmm(q, kernel.transpose(1, 2))  # (B, K, N): m_l(i) = Σ_j k(i, j) Q_j(l)
    pairwise = messages.sum(1, keepdim=True) - messages
    return torch.softmax(-unary - pairwise, dim=1)


def dense_crf(probs: torch.Tensor, rgb: torch.Tensor, params: CrfParams = CrfParams()) -> torch.Tensor:
    """Mean-field marginals (B, K, H, W) of the CRF whose unaries are −log ``probs`` (B, K, H, W) on ``rgb``
    (B, 3, H, W) in 0..255 at the same size."""
    b, k, h, w = probs.shape
    unary = -torch.log(probs.clamp(min=1e-8)).view(b, k, h * w)  # (B, K, N)
    kernel = kernel_matrix(rgb.to(probs.dtype), params)
    q = torch.softmax(-unary, dim=1)
    for _ in range(params.iterations):
        q = mean_field_step(unary, q, kernel)
    return q.view(b, k, h, w)
