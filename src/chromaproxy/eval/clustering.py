"""After IIC training (``chromaproxy cluster``): assign every training image to a cluster, measure the
clustering, write the labels file.

Images are assigned from their centre crop (the views' scale, ``cluster/views.py``) by the sub-head of
each head with the lowest running loss. Where the images have labels the clustering is scored under both
of IIC's conventions (``eval/cluster_metrics.py``: one-to-one Hungarian and many-to-one majority), with
NMI and ARI, for both heads; every head also reports how many of its clusters received an image and the
smallest and largest cluster's share, since empty or giant clusters are IIC's usual failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chromaproxy.cluster.kmeans import kmeans
from chromaproxy.cluster.labels_file import LABELS_FILE, manifest, write_labels
from chromaproxy.data.types import UNLABELED, ImageSet
from chromaproxy.device import resolve_device
from chromaproxy.eval.cluster_metrics import ari, hungarian_accuracy, many_to_one_accuracy, nmi
from chromaproxy.eval.features import extract_features
from chromaproxy.io import atomic_write_text, read_run_config
from chromaproxy.network import load_backbone, load_network
from chromaproxy.tasks.iic import HEADS, IicTask

METRICS_FILE = "clusters.json"


class _AssignmentInput(nn.Module):
    """The run's input representation of each image's centre crop."""

    def __init__(self, task: IicTask, model_input: nn.Module) -> None:
        super().__init__()
        self.task, self.model_input = task, model_input

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.model_input(self.task.assignment_input(rgb))


def assign(run: Path, images: ImageSet) -> tuple[Path, dict[str, Any]]:
    """Write ``run/labels.safetensors`` and ``run/clusters.json`` from the run's last checkpoint;
    ``images`` are the run's training images before the validation split (``engine.data.training_images``)."""
    cfg, network = load_network(run)
    task = network.tasks["iic"]
    device = resolve_device(cfg.device)
    network.to(device)
    soft = probabilities(network, task, images, device)
    metrics = {head: {**score(p.argmax(1), p.shape[1], images.labels), "sub_head": task.best_sub_head(head)} for head, p in soft.items()}
    path = run / LABELS_FILE
    write_labels(path, soft, manifest(cfg, images), {"metrics": metrics})
    atomic_write_text(run / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    return path, metrics


def kmeans_labels(run: Path, images: ImageSet, tap: str, k: int, out: Path) -> tuple[Path, dict[str, Any]]:
    """SSL++'s k-means baseline: a labels file (head ``kmeans``) of k-means on the average-pooled
    features at ``tap`` of a trained run, for the same training images ``images``; written into ``out``."""
    cfg = read_run_config(run)
    network = load_backbone(run, cfg=cfg)
    device = resolve_device(cfg.device)
    tap = network.backbone.resolve_taps([tap])[0]
    features = extract_features(network.to(device).backbone, network.input, images, [tap], "avg", device, description="features")[tap]
    clusters = kmeans(features, k, cfg.seed)
    metrics = {"kmeans": score(clusters, k, images.labels)}
    out.mkdir(parents=True, exist_ok=True)
    path = out / LABELS_FILE
    soft = torch.nn.functional.one_hot(clusters, k).float()  # (N, k): k-means assigns hard
    write_labels(path, {"kmeans": soft}, manifest(cfg, images), {"metrics": metrics, "features": {"run": str(run), "tap": tap}})
    atomic_write_text(out / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    return path, metrics


@torch.no_grad()
def probabilities(network: nn.Module, task: IicTask, images: ImageSet, device: torch.device) -> dict[str, torch.Tensor]:
    """Each head's cluster probabilities (N, k) for ``images``, on the CPU."""
    pooled = extract_features(
        network.backbone, _AssignmentInput(task, network.input), images, task.taps, "avg", device, description="assigning clusters"
    )[task.taps[0]]  # (N, C)
    return {head: task.probabilities(pooled.to(device), head).cpu() for head in HEADS}


def score(clusters: torch.Tensor, k: int, labels: torch.Tensor) -> dict[str, Any]:
    """``usage`` of the k clusters and, over the images that have a label, ``quality``."""
    labeled = labels != UNLABELED
    if not labeled.any():
        return usage(clusters, k)
    return {**usage(clusters, k), **quality(clusters[labeled], labels[labeled]), "scored": int(labeled.sum())}


def usage(clusters: torch.Tensor, k: int) -> dict[str, Any]:
    """How the images spread over the k clusters: used clusters, smallest and largest share."""
    sizes = torch.bincount(clusters, minlength=k).float() / len(clusters)
    return {"k": k, "used": int((sizes > 0).sum()), "smallest": float(sizes.min()), "largest": float(sizes.max())}


def quality(clusters: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Cluster accuracy under both conventions, NMI and ARI against the ground-truth labels."""
    return {
        "hungarian": hungarian_accuracy(clusters, labels),
        "many_to_one": many_to_one_accuracy(clusters, labels),
        "nmi": nmi(clusters, labels),
        "ari": ari(clusters, labels),
    }
