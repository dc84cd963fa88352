"""What a colorization head predicts at each location, one type per ``colorization.loss``.

Each target type turns the true colour at P sampled locations into its training target, scores the
head's outputs against it, and decodes a dense output map back to ab. The task composes one of them, so
the three losses differ only here, as in Larsson et al.'s comparison of the three.

Shapes: B images, P locations, K ab bins, Q histogram bins; ``colour`` (B, P) is the per-location weight
(0 on essentially gray images).
"""

from __future__ import annotations

import torch
from torch import nn

from chromaproxy.color import (
    AB_SCALE,
    chroma_weight,
    decode_annealed_mean,
    decode_mean,
    decode_mode,
    histogram_target,
    hue_chroma,
    hue_chroma_to_ab,
    hue_weight,
    pixel_weights,
    soft_encode,
)
from chromaproxy.tasks.colorize_losses import histogram_kl, regression_loss, soft_cross_entropy

Targets = dict[str, torch.Tensor]


class AbRegression(nn.Module):
    """ab / 110 with an L2 loss: the baseline Zhang et al. argue against (Eq. 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs = 2

    def targets(self, colours: torch.Tensor, lab: torch.Tensor) -> Targets:
        return {"ab": lab[:, 1:].squeeze(2).transpose(1, 2) / AB_SCALE}  # (B, 2, 1, P) → (B, P, 2)

    def loss(self, outputs: torch.Tensor, targets: Targets, colour: torch.Tensor) -> Targets:
        loss = regression_loss(outputs, targets["ab"], colour)
        return {"loss": loss, "ab_rmse": (loss / 2).sqrt().detach() * AB_SCALE}

    def decode(self, outputs: torch.Tensor, L: torch.Tensor, decode: str, temperature: float) -> torch.Tensor:
        return outputs * AB_SCALE


class AbBins(nn.Module):
    """Zhang et al.'s classification: K ab bins, soft-encoded targets, class-rebalancing weights (Eq. 2-4)."""

    def __init__(self, centers: torch.Tensor, weights: torch.Tensor | None, soft_k: int, sigma: float) -> None:
        super().__init__()
        self.register_buffer("centers", centers.float())  # (K, 2)
        self.register_buffer("weights", weights.float() if weights is not None else None)  # (K,) or None
        self.soft_k, self.sigma, self.outputs = soft_k, sigma, centers.shape[0]

    def targets(self, colours: torch.Tensor, lab: torch.Tensor) -> Targets:
        soft = soft_encode(lab[:, 1:], self.centers, self.soft_k, self.sigma)  # (B, K, 1, P)
        kept = {"soft": soft.squeeze(2).transpose(1, 2)}  # (B, P, K)
        if self.weights is not None:
            kept["weights"] = pixel_weights(soft, self.weights).squeeze(1)  # (B, P)
        return kept

    def loss(self, outputs: torch.Tensor, targets: Targets, colour: torch.Tensor) -> Targets:
        weights = colour * targets["weights"] if "weights" in targets else colour
        accuracy = (outputs.argmax(-1) == targets["soft"].argmax(-1)).float().mean()
        return {"loss": soft_cross_entropy(outputs, targets["soft"], weights), "bin_acc": accuracy.detach()}

    def decode(self, outputs: torch.Tensor, L: torch.Tensor, decode: str, temperature: float) -> torch.Tensor:
        if decode == "annealed":
            return decode_annealed_mean(outputs, self.centers, temperature)
        return decode_mode(outputs, self.centers) if decode == "mode" else decode_mean(outputs, self.centers)


class ColourHistograms(nn.Module):
    """Larsson et al.'s two Q-bin histograms, KL each: hue (weighted by chroma) and chroma, or a and b
    (``lab``). The chroma term's min(1, 3L, 3(1-L)) weighting (``lightness_weight``) is from Larsson's
    released code, not from the loss the paper states, hence opt-in."""

    def __init__(self, bins: int, lab: bool, lightness_weight: bool) -> None:
        super().__init__()
        self.bins, self.lab, self.lightness_weight, self.outputs = bins, lab, lightness_weight, 2 * bins

    def targets(self, colours: torch.Tensor, lab: torch.Tensor) -> Targets:
        if self.lab:
            first, second = (((lab[:, c, 0] / AB_SCALE + 1) / 2).clamp(0, 1 - 1e-6) for c in (1, 2))  # a, b (B, P)
            first_weight = torch.ones_like(first)
        else:
            first, second = (t.squeeze(1) for t in hue_chroma(colours.permute(0, 2, 1).unsqueeze(2)))  # (B, P) each
            first_weight = hue_weight(second)
        return {
            "first": _per_location(histogram_target(first.unsqueeze(1), self.bins, circular=not self.lab)),
            "second": _per_location(histogram_target(second.unsqueeze(1), self.bins)),
            "first_weight": first_weight,
            "second_weight": self.second_weight(lab[:, 0, 0] / 100),
        }

    def second_weight(self, L01: torch.Tensor) -> torch.Tensor:
        """Chroma (or b) term weight per location (B, P) from L in [0, 1]."""
        if self.lightness_weight and not self.lab:
            return chroma_weight(L01)
        return torch.ones_like(L01)

    def loss(self, outputs: torch.Tensor, targets: Targets, colour: torch.Tensor) -> Targets:
        first, second = outputs.split(self.bins, dim=-1)  # (B, P, Q) each
        first_loss = histogram_kl(first, targets["first"], colour * targets["first_weight"])
        second_loss = histogram_kl(second, targets["second"], colour * targets["second_weight"])
        return {"loss": first_loss + second_loss, "first_kl": first_loss.detach(), "second_kl": second_loss.detach()}

    def decode(self, outputs: torch.Tensor, L: torch.Tensor, decode: str, temperature: float) -> torch.Tensor:
        first, second = _expected_bins(outputs, self.bins, decode, temperature, circular=not self.lab)
        if self.lab:
            return torch.stack([first, second], dim=1) * 2 * AB_SCALE - AB_SCALE  # (B, 2, H, W)
        return hue_chroma_to_ab(first, second, L)


def _expected_bins(
    outputs: torch.Tensor, bins: int, decode: str, temperature: float, circular: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel values in [0, 1] of the two histograms: mode, mean, or annealed mean (a circular first
    histogram, hue, has its mean taken on the circle)."""
    first, second = outputs.split(bins, dim=1)  # (B, Q, H, W) each
    centres = (torch.arange(bins, device=outputs.device, dtype=outputs.dtype) + 0.5) / bins
    if decode == "mode":
        return centres[first.argmax(1)], centres[second.argmax(1)]
    scale = temperature if decode == "annealed" else 1.0
    p_first, p_second = (first / scale).softmax(1), (second / scale).softmax(1)
    column = centres.view(1, -1, 1, 1)
    if not circular:
        return (p_first * column).sum(1), (p_second * column).sum(1)
    angle = 2 * torch.pi * column
    hue = torch.atan2((p_first * angle.sin()).sum(1), (p_first * angle.cos()).sum(1)) / (2 * torch.pi)
    return hue.remainder(1.0), (p_second * column).sum(1)


def _per_location(histogram: torch.Tensor) -> torch.Tensor:
    """(B, Q, 1, P) → (B, P, Q)."""
    return histogram.squeeze(2).permute(0, 2, 1)
