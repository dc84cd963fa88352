"""Seeded validation and labeled-subset splits.

Each split draws from its own ``torch.Generator`` seeded with the run's seed, so the same seed gives the
same indices on every machine and the global RNG (which seeds the weights) is never advanced. Indices come
back sorted, so the subsets keep the dataset's order.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from chromaproxy.data.types import UNLABELED, DatasetSplits
from chromaproxy.errors import UserError

TEST_SEED_OFFSET = 7919  # keeps the held-out test draw independent of the validation draw of the same seed


def val_split(labels: torch.Tensor, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_idx, val_idx): disjoint, sorted, together every index of ``labels`` (N,).

    Stratified when every image is labeled (each class gives its share of ``val_size``, so validation
    accuracy is not skewed by a chance excess of one class); uniform otherwise.
    """
    n = len(labels)
    if not 0 <= val_size < n:
        raise UserError(f"data.val_size={val_size} must be between 0 and {n - 1} (the number of training images - 1)")
    if val_size == 0:
        return torch.arange(n), torch.empty(0, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    if (labels == UNLABELED).any():
        val = _shuffled(torch.arange(n), generator)[:val_size]
    else:
        val = torch.cat([_shuffled(members, generator)[:take] for members, take in _quota(labels, val_size)])
    is_train = torch.ones(n, dtype=torch.bool)
    is_train[val] = False
    return torch.nonzero(is_train).flatten(), val.sort().values


def held_out_test(source: DatasetSplits, fraction: float, seed: int) -> tuple[DatasetSplits, torch.Tensor]:
    """``source`` with ``fraction`` of its train images moved to a test split, for a folder that has none,
    and the indices (into the folder's sorted listing) of the images moved.

    The split is a stratified ``val_split`` with its own seed offset, so it is fixed by the run's seed
    (saved in its config.yaml), disjoint from the validation split drawn later, and rebuilt identically by
    ``evaluate``.
    """
    if fraction == 0:
        return source, torch.empty(0, dtype=torch.long)
    if source.test is not None:
        raise UserError(
            f"data.test_fraction={fraction} holds out a test split, but {source.location} already has one; "
            "drop data.test_fraction"
        )
    held = round(fraction * len(source.train))
    if held == 0:
        raise UserError(f"data.test_fraction={fraction} of {len(source.train)} images holds out none; raise it")
    train, test = val_split(source.train.labels, held, seed + TEST_SEED_OFFSET)
    return replace(source, train=source.train.subset(train), test=source.train.subset(test)), test


def label_split(labels: torch.Tensor, labels_per_class: int, seed: int) -> torch.Tensor:
    """Sorted indices of exactly ``labels_per_class`` images of every class present in ``labels`` (N,)."""
    classes = labels[labels != UNLABELED].unique()
    if labels_per_class < 1 or len(classes) == 0:
        raise UserError(
            f"data.labels_per_class={labels_per_class} needs a labeled dataset and a value >= 1; "
            "unset it to train on all labels"
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in classes:
        members = torch.nonzero(labels == label).flatten()
        if len(members) < labels_per_class:
            raise UserError(
                f"data.labels_per_class={labels_per_class} but class {int(label)} has only {len(members)} "
                "training images; lower data.labels_per_class, or raise data.limit / lower data.val_size"
            )
        chosen.append(_shuffled(members, generator)[:labels_per_class])
    return torch.cat(chosen).sort().values


def _quota(labels: torch.Tensor, total: int) -> list[tuple[torch.Tensor, int]]:
    """Members of each class and how many of them a stratified sample of ``total`` takes.

    Each class gets the floor of its exact share; the leftover slots go to the largest remainders
    (Hamilton's method), so the counts sum to ``total`` and stay within 1 of the exact shares.
    """
    classes, counts = labels.unique(return_counts=True)
    exact = counts.double() * total / len(labels)
    take = exact.floor().long()
    leftover = total - int(take.sum())
    take[torch.argsort(exact - take, descending=True, stable=True)[:leftover]] += 1
    return [(torch.nonzero(labels == c).flatten(), int(t)) for c, t in zip(classes, take)]


def _shuffled(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=generator)]
