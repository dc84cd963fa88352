"""Segmentation metrics from one confusion matrix (the PASCAL VOC definition).

IoU of class c = TP / (TP + FP + FN) over all test pixels pooled (not averaged per image); pixels whose
ground truth is 255 count nowhere, whatever was predicted there. A class absent from both the ground truth
and the predictions has no IoU (NaN) and is left out of the mean, as the VOC devkit does.
"""

from __future__ import annotations

import torch

from chromaproxy.segment.masks import IGNORE


def confusion_matrix(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts, rows = true class, columns = predicted class."""
    keep = truth != IGNORE
    t, p = truth[keep].long(), predicted[keep].long()
    if len(t) and (int(t.max()) >= num_classes or int(p.max()) >= num_classes or int(p.min()) < 0):
        raise ValueError(f"class ids must be in 0..{num_classes - 1} (or {IGNORE} in the truth)")
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).view(num_classes, num_classes)


def class_iou(confusion: torch.Tensor) -> torch.Tensor:
    """(num_classes,) float64 IoU per class; NaN for a class neither present nor predicted."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean IoU over the classes that have one."""
    iou = class_iou(confusion)
    return float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else float("nan")


def pixel_accuracy(confusion: torch.Tensor) -> float:
    """Fraction of non-ignored pixels labeled correctly."""
    return float(confusion.diagonal().sum() / confusion.sum().clamp(min=1))
