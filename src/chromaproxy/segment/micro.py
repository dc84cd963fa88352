"""Micro-annotation (Kolesnikov & Lampert, thesis ch. 3, §3.3–3.4): the mid-level patterns a class's
localisation maps fire on are clustered; a person marks the clusters that are not the object but something
that comes with it (water for boats, rails for trains) as distractors; their regions are then removed from
the class's localisation maps before cues are drawn from them.

The only coupling with a cue network is the triple it produces for a batch of images: ``cams`` (B, K, H, W)
class activation maps (class 0 = background), ``features`` (B, C, H, W) its feature map at the CAMs'
resolution, ``labels`` (B, K) bool image-level labels. micro.json (``chromaproxy.segment.micro_file``)
carries, per class, each cluster's mean pattern and its mark.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chromaproxy.segment.micro_file import DISTRACTOR, class_clusters
from chromaproxy.segment.sec import foreground_cues

FOREGROUND = 0.2  # a class's predicted foreground: CAM > 0.2 · its maximum (as SEC's cues)


def unit_patterns(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → the same shape, each position's feature vector made non-negative and L2-normalised
    (the thesis clusters post-ReLU features, where the clamp changes nothing); all-zero vectors stay 0."""
    return F.normalize(features.clamp(min=0), dim=1)


def class_patterns(triples, fraction: float = FOREGROUND) -> dict[int, torch.Tensor]:
    """Per foreground class c, the unit patterns (N_c, C) at every position of every image labelled c
    where c's CAM exceeds ``fraction`` of its maximum; ``triples`` yields (cams, features, labels)."""
    found: dict[int, list[torch.Tensor]] = {}
    for cams, features, labels in triples:
        region = foreground_cues(cams.float(), labels.bool(), fraction)  # (B, K, H, W)
        vectors = unit_patterns(features.float()).permute(0, 2, 3, 1)  # (B, H, W, C)
        for c in region.flatten(2).any(-1).any(0).nonzero().flatten().tolist():
            picked = vectors[region[:, c]]  # (n, C)
            found.setdefault(c, []).append(picked[picked.norm(dim=1) > 0])
    return {c: torch.cat(parts) for c, parts in sorted(found.items())}


def heatmaps(features: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Thesis Eq. 3.1: the heatmap of cluster m at position u is ⟨φ_u, mean_m⟩, φ_u the unit pattern there.
    ``features`` (B, C, H, W), ``means`` (M, C) → (B, M, H, W)."""
    return torch.einsum("bchw,mc->bmhw", unit_patterns(features.float()), means.to(features.device, torch.float32))


def best_cluster(features: torch.Tensor, means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position, the index of the cluster whose heatmap is highest (B, H, W), and whether any heatmap
    there is positive (a zero feature matches no cluster)."""
    maps = heatmaps(features, means)  # (B, M, H, W)
    best = maps.max(dim=1)
    return best.indices, best.values > 0


def suppress_distractors(cams: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, micro: dict) -> torch.Tensor:
    """A copy of ``cams`` (B, K, H, W) in which, for every class c the image is labelled with, each position
    whose best-matching cluster of c is marked distractor is set to 0 (the thesis gives such regions score
    −∞ for c; 0 lies below the 0.2 · max foreground threshold, so the region can no longer be a cue of c).
    ``features`` (B, C, H, W) at the CAMs' resolution, ``labels`` (B, K) bool, ``micro`` a parsed micro.json."""
    out = cams.clone()
    for c, means, distractor in class_clusters(micro, channels=features.shape[1], num_classes=cams.shape[1]):
        if not distractor.any():
            continue
        best, matched = best_cluster(features, means)  # (B, H, W) each
        drop = distractor.to(best.device)[best] & matched & labels[:, c].bool()[:, None, None]
        out[:, c] = out[:, c].masked_fill(drop, 0)
    return out


def distractor_share(micro: dict) -> tuple[int, int]:
    """(clusters marked distractor, clusters in all) — for summaries."""
    marks = [cluster["mark"] for entry in micro["classes"].values() for cluster in entry["clusters"]]
    return sum(mark == DISTRACTOR for mark in marks), len(marks)
