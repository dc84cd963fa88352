"""The training data of a run: source, limit, validation split, labeled subset, saved in the run dir."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from chromaproxy.cluster.labels_file import pseudo_labels_for
from chromaproxy.data.sources import load_source
from chromaproxy.data.splits import held_out_test, label_split, val_split
from chromaproxy.data.types import UNLABELED, DatasetSplits, ImageSet
from chromaproxy.engine.distributed import Dist, computed_on_main
from chromaproxy.errors import UserError
from chromaproxy.inference.recolorize import recolorized_for
from chromaproxy.io import atomic_write_text
from chromaproxy.segment.sec_data import sec_training_images, trains_on_cues
from chromaproxy.tasks import TASKS
from chromaproxy.video.pairs import graph_pairs, trains_on_graph


@dataclass
class TrainingData:
    """``train`` carries UNLABELED (-1) for images outside the labeled subset."""

    train: ImageSet
    val: ImageSet | None
    test: ImageSet | None
    classes: list[str]
    warnings: list[str] = field(default_factory=list)  # printed by the trainer before it starts

    def pool(self, labeled_only: bool) -> torch.Tensor:
        """Indices of the training images a run draws batches from."""
        if labeled_only:
            return torch.nonzero(self.train.labels != UNLABELED).flatten()
        return torch.arange(len(self.train))


def prepare_data(cfg: Any, run: Path | None, progress: bool = True, device: torch.device | None = None,
                 dist: Dist | None = None) -> TrainingData:
    """Load the dataset the config names and cut it into the run's splits (saved as ``splits.json``);
    pseudo-labels and recolorized images (Color-S4L) cover every training image. SEC's cue maps and the
    recolorized images are computed on ``device`` by rank 0 of ``dist``, which hands them to the others."""
    data, device = cfg.data, device or torch.device("cpu")
    once = partial(computed_on_main, dist=dist or Dist(), dtype=torch.uint8)
    if trains_on_cues(cfg):  # SEC: a mask dataset's photos with their cues, from the run's cue stage
        source, test_index, full, warnings = sec_training_images(cfg, run, device, progress, once)
    else:
        source, test_index, full, warnings = training_images(cfg, progress)
    if full.pseudo_labels is None and any(TASKS[name].targets_from == "pseudo_labels" for name in cfg.tasks):
        full = dataclasses.replace(full, pseudo_labels=pseudo_labels_for(cfg, full))
    if cfg.colorizer is not None:
        full = dataclasses.replace(full, recolorized=once(partial(recolorized_for, cfg, full, run, device, progress)))
    train_index, val_index = val_split(full.labels, data.val_size, cfg.seed)
    train = full if len(val_index) == 0 else full.subset(train_index)  # no gather: a mapped split stays mapped
    labeled = None
    if data.labels_per_class is not None:
        labeled = label_split(train.labels, data.labels_per_class, cfg.seed)
        train = _keep_labels(train, labeled)
    if run is not None:
        _save_splits(run, train_index[labeled] if labeled is not None else None, val_index, test_index)
    val = full.subset(val_index) if len(val_index) else None
    return TrainingData(train=train, val=val, test=source.test, classes=full.classes, warnings=warnings)


def training_images(cfg: Any, progress: bool = True) -> tuple[DatasetSplits, torch.Tensor, ImageSet, list[str]]:
    """(source, held-out test index, the training images before the validation split, warnings): the
    images a labels file covers (``chromaproxy cluster`` assigns every one of them)."""
    data = cfg.data
    if trains_on_graph(cfg):
        pairs = graph_pairs(cfg)
        return DatasetSplits("graph", pairs, None, str(cfg.graph)), torch.zeros(0, dtype=torch.int64), pairs, []
    source = load_source(
        data.name, root=data.root, path=data.path, image_size=data.image_size,
        skip_bad=data.skip_bad, download=data.download, progress=progress,
    )
    source, test_index = held_out_test(source, data.test_fraction, cfg.seed)
    full = _training_split(source, cfg)
    warnings = []
    if data.limit is not None and data.limit > len(full):
        warnings.append(
            f"data.limit={data.limit} is more than the {len(full)} training images of data.name={data.name}; "
            f"all {len(full)} are used"
        )
    if data.limit is not None and data.limit < len(full):
        full = full.subset(torch.arange(data.limit))
    return source, test_index, full, warnings


def _training_split(source: DatasetSplits, cfg: Any) -> ImageSet:
    """The split a run trains on (``train``, or ``unlabeled`` with data.unlabeled=true), checked against
    what the config promises: the image side and, for unlabeled images, tasks that need no labels."""
    data = cfg.data
    images = source.train
    if data.unlabeled:
        if source.unlabeled is None:
            raise UserError(f"data.unlabeled=true, but data.name={data.name} has no unlabeled split here (STL-10 has one)")
        needing = [name for name in cfg.tasks if TASKS[name].needs_labels]
        if needing:
            raise UserError(f"data.unlabeled=true trains on images without labels, but task {needing[0]} needs labels")
        images = source.unlabeled
    side = images.images.shape[-1]
    if side != data.image_size:
        raise UserError(
            f"data.name={data.name} has {side}x{side} images but data.image_size={data.image_size}; "
            f"set data.image_size={side} (only the folder source resizes)"
        )
    return images


def _keep_labels(images: ImageSet, labeled: torch.Tensor) -> ImageSet:
    labels = torch.full_like(images.labels, UNLABELED)
    labels[labeled] = images.labels[labeled]
    return dataclasses.replace(images, labels=labels)


def _save_splits(run: Path, labeled: torch.Tensor | None, val: torch.Tensor, test: torch.Tensor) -> None:
    """Indices into the (limited) training split, so any later command can rebuild the same splits;
    ``held_out_test`` (data.test_fraction) indexes the folder's whole listing, before the hold-out."""
    splits = {"val": val.tolist(), "labeled": None if labeled is None else labeled.tolist()}
    if len(test):
        splits["held_out_test"] = test.tolist()
    atomic_write_text(run / "splits.json", json.dumps(splits) + "\n")
