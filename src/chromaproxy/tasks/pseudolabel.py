"""Semantic pseudo-labels as a task (SSL++, Sec. IV): classify each image into the cluster a clustering
run gave it, beside a proxy task, ``L = L_proxy + λ·L_pseudo``.

A proxy task alone makes the last block specific to the proxy (rotation's block-4 kNN collapses);
predicting clusters, which are about the image's content, keeps the last block semantic. SSL++ sets
λ = 1 for colorization and context and λ = 0.05 for rotation and AET (``task_weights``). The targets
come from ``pseudolabel.labels``: a ``chromaproxy cluster`` or ``chromaproxy kmeans`` output, checked
against the run's own images (``cluster/labels_file.py``), or, for the ablation rows, ``ground-truth``,
``random``, or ``coupled``: k-means of the current features at the start of every epoch (DeepCluster-style;
the classifier is re-initialised each time), which SSL++ found worse than clustering first.
The head is RotNet's classifier (global average pool, Linear) on the deepest tap; it reads the augmented
images themselves, not the proxy task's transformed inputs. Images without a pseudo-label (the test
split) add nothing to the loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from chromaproxy.cluster.kmeans import kmeans
from chromaproxy.cluster.labels_file import cluster_count
from chromaproxy.io import atomic_write_text
from chromaproxy.ranges import Positive
from chromaproxy.tasks.base import Task, TaskContext
from chromaproxy.tasks.heads import classification_head, labeled_cross_entropy

SAVED = "pseudolabel.json"  # the cluster count, kept in the run so the network rebuilds without the file


@dataclass
class PseudolabelOptions:
    labels: str | None = None  # a chromaproxy cluster/kmeans folder or its labels.safetensors; or ground-truth, random, coupled
    head: str = "overcluster"  # which head of the labels file: overcluster (IIC's 70, SSL++'s choice), clusters, or kmeans
    k: Positive[int] = 70  # number of clusters of labels=random and labels=coupled
    tap: str | None = None  # backbone tap the classifier reads; None = the deepest


class PseudolabelTask(Task):
    name = "pseudolabel"
    Options = PseudolabelOptions
    targets_from = "pseudo_labels"

    def __init__(self, options: PseudolabelOptions, context: TaskContext) -> None:
        super().__init__(options, context)
        channels = self.read_tap(context, options.tap)
        self.k = _cluster_count(options, context)
        self.head = classification_head(channels, self.k)

    @property
    def coupled(self) -> bool:
        """DeepCluster-style (SSL++'s coupled row): the trainer re-clusters the current features every epoch."""
        return self.options.labels == "coupled"

    def recluster(self, features: torch.Tensor, seed: int) -> torch.Tensor:
        """New pseudo-labels (N,) by k-means of the training images' pooled features (N, C) at this task's
        tap, and a fresh classifier: the old one's classes mean nothing for the new clusters."""
        self.head[-1].reset_parameters()
        return kmeans(features, self.k, seed)

    def make_batch(self, rgb: torch.Tensor, pseudo_labels: torch.Tensor, generator: torch.Generator):
        return rgb, pseudo_labels

    def forward(self, features: dict[str, torch.Tensor], pseudo_labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(features[self.taps[0]])  # (B, k)
        return labeled_cross_entropy(logits, pseudo_labels)


def _cluster_count(options: PseudolabelOptions, context: TaskContext) -> int:
    """k from the labels source while training (saved in the run), from the run when rebuilt."""
    saved = context.run / SAVED if context.run is not None else None
    if context.images is None and saved is not None and saved.is_file():
        return json.loads(saved.read_text())["k"]
    k = cluster_count(options, context.num_classes)
    if saved is not None and context.images is not None:
        atomic_write_text(saved, json.dumps({"k": k, "labels": options.labels, "head": options.head}) + "\n")
    return k
