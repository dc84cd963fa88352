"""SEC's losses (Kolesnikov & Lampert 2016, "Seed, Expand and Constrain", Sec. 3): pure functions of the
network's per-class score maps, each tested against a naive reference.

Shapes: B images, K classes (class 0 = background), H x W output positions. ``probs`` are the softmax over
classes at each position; ``labels`` (B, K) bool are the image-level labels (background always present).
"""

from __future__ import annotations

import torch

D_FOREGROUND, D_BACKGROUND = 0.996, 0.999  # GWRP decay (SEC, Sec. 3.2)
EPS = 1e-5  # keeps −log finite where a pooled score reaches 0 or a maximum reaches 1
TINY = 1e-12  # floor of probabilities inside the KL (a 0 in the CRF target contributes 0)


def gwrp(scores: torch.Tensor, d: float) -> torch.Tensor:
    """Global weighted rank pooling of (..., H, W) → (...): scores sorted descending, the j-th (from 0)
    weighted d^j, normalised by the sum of weights. d = 1 is average pooling, d = 0 max pooling."""
    flat = scores.flatten(-2).sort(dim=-1, descending=True).values  # (..., H*W)
    weights = torch.pow(torch.full((flat.shape[-1],), float(d), dtype=flat.dtype, device=flat.device),
                        torch.arange(flat.shape[-1], device=flat.device, dtype=flat.dtype))  # 0^0 = 1
    return (flat * weights).sum(-1) / weights.sum()


def seeding_loss(log_probs: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
    """−(1/|S_c|) Σ over cue pixels of log p(cue class), per image, averaged over images with cues.

    ``log_probs`` (B, K, H, W); ``cues`` (B, K, H, W) bool, True where class k is a localisation cue. Pixels
    without a cue contribute nothing, whatever the network predicts there."""
    cues = cues.to(log_probs.dtype)
    count = cues.sum(dim=(1, 2, 3))  # (B,)
    per_image = -(cues * log_probs).sum(dim=(1, 2, 3)) / count.clamp(min=1)
    has_cues = count > 0
    return per_image[has_cues].mean() if has_cues.any() else log_probs.sum() * 0


def expansion_loss(probs: torch.Tensor, labels: torch.Tensor, d_fg: float = D_FOREGROUND, d_bg: float = D_BACKGROUND) -> torch.Tensor:
    """SEC's expansion loss: −log GWRP(p_c, d_fg) averaged over present foreground classes, −log(1 − max p_c)
    averaged over absent ones, and −log GWRP(p_0, d_bg) for the background; mean over images."""
    pooled_fg, pooled_bg = gwrp(probs, d_fg), gwrp(probs[:, 0], d_bg)  # (B, K), (B,)
    biggest = probs.flatten(2).amax(-1)  # (B, K)
    present, absent = labels.clone(), ~labels
    present[:, 0], absent[:, 0] = False, False
    present, absent = present.to(probs.dtype), absent.to(probs.dtype)
    fg = -(present * torch.log(pooled_fg + EPS)).sum(1) / present.sum(1).clamp(min=1)
    missing = -(absent * torch.log(1 - biggest + EPS)).sum(1) / absent.sum(1).clamp(min=1)
    return (fg + missing - torch.log(pooled_bg + EPS)).mean()


def constrain_loss(probs: torch.Tensor, crf_probs: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(Q_crf ‖ p) = Σ_k Q log(Q / p): the network is pulled towards the CRF's
    boundary-respecting output, which is treated as a fixed target (no gradient flows into it)."""
    target = crf_probs.detach()
    kl = (target * (torch.log(target.clamp(min=TINY)) - torch.log(probs.clamp(min=TINY)))).sum(1)  # (B, H, W)
    return kl.mean()


def foreground_cues(cams: torch.Tensor, labels: torch.Tensor, fraction: float = 0.2) -> torch.Tensor:
    """(B, K, H, W) bool: for each present foreground class, positions where its class activation map
    exceeds ``fraction`` of its maximum (SEC's localisation cues); background and absent classes False."""
    peak = cams.flatten(2).amax(-1)[:, :, None, None]  # (B, K, 1, 1)
    keep = labels.clone()
    keep[:, 0] = False
    return (cams > fraction * peak) & (peak > 0) & keep[:, :, None, None]


def background_cues(saliency: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """(B, H, W) bool: each image's ``fraction`` least salient positions (SEC's background cues; the thesis
    takes saliency from a saliency network, any (B, H, W) map with higher = more object-like will do)."""
    flat = saliency.flatten(1)  # (B, H*W)
    count = max(1, round(fraction * flat.shape[1]))
    lowest = flat.topk(count, dim=1, largest=False).indices
    cues = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, lowest, True)
    return cues.view_as(saliency)


def localisation_cues(cams: torch.Tensor, labels: torch.Tensor, fg_fraction: float = 0.2, bg_fraction: float = 0.1) -> torch.Tensor:
    """(B, K, H, W) bool cues for the seeding loss: foreground from the present classes' CAMs, background
    (class 0) where the strongest present-class CAM, normalised by its peak, is lowest; a position claimed
    by background and a foreground class is dropped from both (the cue would contradict itself)."""
    cues = foreground_cues(cams, labels, fg_fraction)
    peak = cams.flatten(2).amax(-1).clamp(min=1e-12)[:, :, None, None]  # (B, K, 1, 1)
    present = labels.clone()
    present[:, 0] = False
    relative = torch.where(present[:, :, None, None], cams / peak, torch.full_like(cams, -torch.inf))
    background = background_cues(relative.amax(1), bg_fraction) & ~cues.any(1)  # (B, H, W)
    cues[:, 0] = background
    return cues
