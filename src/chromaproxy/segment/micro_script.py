"""The scripted annotator, and the measure of what its marks do, so the method's effect is known without a
person at the page.

A cluster's region on a photo labelled c is where it is c's best-matching cluster inside c's predicted
foreground (CAM > 0.2 · max): exactly what suppression would remove. Its overlap is the share of those
positions whose ground-truth mask says c (ignored pixels left out), over all training photos labelled c;
clusters under ``threshold`` are distractors. A person keeps at least one cluster per class as the
object, and so does the script: if every cluster falls below, the one with the highest overlap stays.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chromaproxy.segment.masks import IGNORE
from chromaproxy.segment.metrics import confusion_matrix
from chromaproxy.segment.micro import best_cluster
from chromaproxy.segment.micro_file import DISTRACTOR, OBJECT, class_clusters, set_mark
from chromaproxy.segment.sec import foreground_cues

OVERLAP = 0.5


def masks_at(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Masks (N, S, S) → (N, h, w) by nearest neighbour, so class ids and 255 stay what they are."""
    return F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0].long()  # (N, h, w)


def cluster_overlaps(triple, masks: torch.Tensor, c: int, means: torch.Tensor, fraction: float) -> list[float | None]:
    """Per cluster of class c, the share of its region that the masks call c (None: it has no region)."""
    cams, features, labels = triple
    holders = labels[:, c].bool()
    region = foreground_cues(cams[holders].float(), labels[holders].bool(), fraction)[:, c]  # (n, h, w)
    best, matched = best_cluster(features[holders], means)
    truth = masks_at(masks[holders], tuple(region.shape[-2:]))
    counted = region & matched & (truth != IGNORE)
    shares = []
    for m in range(len(means)):
        mine = counted & (best == m)
        shares.append(float((mine & (truth == c)).sum() / mine.sum()) if mine.any() else None)
    return shares


def scripted_marks(micro: dict, triple, masks: torch.Tensor, fraction: float, threshold: float = OVERLAP) -> dict:
    """Mark every cluster of ``micro`` in place from the masks; returns {class id: overlaps}."""
    cams, features, _ = triple
    overlaps = {}
    for c, means, _ in class_clusters(micro, features.shape[1], cams.shape[1]):
        shares = cluster_overlaps(triple, masks, c, means, fraction)
        scored = [-1.0 if s is None else s for s in shares]
        keep = max(range(len(scored)), key=scored.__getitem__)
        for m, share in enumerate(shares):
            low = share is not None and share < threshold and m != keep
            set_mark(micro, str(c), m, DISTRACTOR if low else OBJECT)
        overlaps[c] = shares
    return overlaps


def cue_segmentation(cams: torch.Tensor, labels: torch.Tensor, side: int, fraction: float) -> torch.Tensor:
    """The localisation maps read as a segmentation (B, side, side): at each pixel the labelled foreground
    class whose CAM, upsampled bilinearly and divided by its maximum, is highest, if that exceeds
    ``fraction``; background (0) elsewhere."""
    maps = F.interpolate(cams.float(), size=(side, side), mode="bilinear", align_corners=False)  # (B, K, S, S)
    peak = maps.flatten(2).amax(-1).clamp(min=1e-12)[:, :, None, None]
    present = labels.bool().clone()
    present[:, 0] = False
    relative = torch.where(present[:, :, None, None], maps / peak, torch.full_like(maps, -torch.inf))
    best = relative.max(dim=1)
    return torch.where(best.values > fraction, best.indices, torch.zeros_like(best.indices))


def cue_confusion(cams: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, num_classes: int, fraction: float) -> torch.Tensor:
    """Confusion matrix of ``cue_segmentation`` against the masks (canvas padding is 255: not counted)."""
    return confusion_matrix(cue_segmentation(cams, labels, masks.shape[-1], fraction), masks, num_classes)
