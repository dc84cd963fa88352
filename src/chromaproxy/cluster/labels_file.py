"""The labels file: one cluster id per training image, what ``chromaproxy cluster`` writes and the
``pseudolabel`` task reads (SSL++, Sec. IV: cluster first, then train with the clusters as labels).

``labels.safetensors`` holds, for every head, ``<head>.clusters`` (N,) int64 and ``<head>.soft`` (N, k)
float32 probabilities, in the order of the run's training images (after ``data.limit``, before the
validation split, so a later run with any ``data.val_size`` finds its validation images' clusters too).
Its header (and ``labels.json`` beside it) is the manifest: the dataset, the split, the image count and
a fingerprint of the pixels. A run that reads the file checks all four against its own images, so a
file made for another dataset, split, limit or image order is a one-line error, never a silent
misalignment of clusters and images.

Three sources need no file, for SSL++'s ablation rows (Tables IX, XII): ``ground-truth`` (the dataset's
labels: the upper bound), ``random`` (uniform cluster ids, seeded: the floor) and ``coupled`` (re-clustered
by the trainer every epoch; UNLABELED until the first re-clustering).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from chromaproxy.checkpoint import load_checkpoint, read_meta, save_checkpoint
from chromaproxy.data.types import UNLABELED, ImageSet
from chromaproxy.errors import UserError

LABELS_FILE = "labels.safetensors"
FORMAT = "chromaproxy-labels/1"
FINGERPRINT_IMAGES = 1024  # evenly spaced images hashed: order, limit and content all change the hash


def fingerprint(images: ImageSet) -> str:
    """SHA-256 over the image count, the shape and ``FINGERPRINT_IMAGES`` evenly spaced images' pixels."""
    count = len(images)
    picked = torch.linspace(0, count - 1, min(count, FINGERPRINT_IMAGES)).long() if count else torch.zeros(0, dtype=torch.long)
    digest = hashlib.sha256(repr(tuple(images.images.shape)).encode())
    digest.update(images.images[picked].contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def manifest(cfg: Any, images: ImageSet) -> dict[str, Any]:
    """What identifies a run's training images: dataset, split, count and pixel fingerprint."""
    split = "unlabeled" if cfg.data.unlabeled else "train"
    return {"dataset": cfg.data.name, "split": split, "images": len(images), "fingerprint": fingerprint(images)}


def labels_path(source: str | Path) -> Path:
    """A labels file, or the cluster run directory holding one."""
    path = Path(source)
    return path / LABELS_FILE if path.is_dir() else path


def write_labels(path: Path, soft: dict[str, torch.Tensor], info: dict[str, Any], extra: dict[str, Any]) -> None:
    """Write every head's hard and soft assignments (``soft``: head → (N, k)) with the manifest ``info``."""
    tensors = {}
    for head, probabilities in soft.items():
        tensors[f"{head}.clusters"] = probabilities.argmax(1)
        tensors[f"{head}.soft"] = probabilities.float()
    heads = {head: p.shape[1] for head, p in soft.items()}
    save_checkpoint(path, tensors, {"format": FORMAT, **info, "heads": heads, **extra})


def read_header(source: str, head: str) -> dict[str, Any]:
    """The manifest of a labels file or cluster run, checked to be one and to hold ``head``."""
    path = labels_path(source)
    if not path.is_file():
        raise UserError(f"pseudolabel.labels={source}: no labels file there; make one with chromaproxy cluster CONFIG out={source}")
    meta = read_meta(path)
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a chromaproxy labels file (a checkpoint?); pass what chromaproxy cluster wrote")
    if head not in meta["heads"]:
        raise UserError(f"{path} has no head {head!r}; pseudolabel.head is one of: {', '.join(meta['heads'])}")
    return meta


def check_alignment(meta: dict[str, Any], expected: dict[str, Any], source: str) -> None:
    """One-line error naming the first of dataset, split, count, pixels that differs from this run's."""
    fixes = {
        "dataset": "cluster the same data.name",
        "split": "match data.unlabeled",
        "images": "use the same data.limit",
        "fingerprint": "the images differ or are in another order: cluster this run's data again",
    }
    for key, fix in fixes.items():
        if meta.get(key) != expected[key]:
            raise UserError(
                f"pseudolabel.labels={source} was made for {key} {meta.get(key)!r}, this run trains on "
                f"{expected[key]!r} ({fix})"
            )


def _require_source(options: Any) -> None:
    if options.labels is None:
        raise UserError("the pseudolabel task needs pseudolabel.labels=RUN_OR_FILE (from chromaproxy cluster or kmeans), ground-truth, random or coupled")


def cluster_count(options: Any, num_classes: int) -> int:
    """The number of pseudo-label classes ``options`` (``cfg.pseudolabel``) gives."""
    _require_source(options)
    if options.labels == "ground-truth":
        return num_classes
    if options.labels in ("random", "coupled"):
        return options.k
    return read_header(options.labels, options.head)["heads"][options.head]


def pseudo_labels_for(cfg: Any, images: ImageSet) -> torch.Tensor:
    """The pseudo-labels (N,) of a run's training images ``images``, from ``cfg.pseudolabel``."""
    options = cfg.pseudolabel
    _require_source(options)
    if options.labels == "ground-truth":
        if (images.labels == UNLABELED).any():
            raise UserError("pseudolabel.labels=ground-truth needs every training image labeled (drop data.labels_per_class / data.unlabeled)")
        return images.labels.clone()
    if options.labels == "random":
        generator = torch.Generator().manual_seed(cfg.seed)
        return torch.randint(0, options.k, (len(images),), generator=generator)
    if options.labels == "coupled":
        if cfg.data.val_size:
            raise UserError("pseudolabel.labels=coupled re-clusters the training images only; set data.val_size=0")
        return torch.full((len(images),), UNLABELED, dtype=torch.int64)
    check_alignment(read_header(options.labels, options.head), manifest(cfg, images), options.labels)
    return load_checkpoint(labels_path(options.labels), f"{options.head}.clusters")[""]
