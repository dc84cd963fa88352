"""Validation and labeled-subset splits: sizes, stratification, disjointness, determinism, errors."""

from __future__ import annotations

import pytest
import torch

from chromaproxy.data.splits import label_split, val_split
from chromaproxy.data.types import UNLABELED
from chromaproxy.errors import UserError


def balanced(classes: int = 10, per_class: int = 50) -> torch.Tensor:
    """Labels 0..classes-1, each ``per_class`` times, interleaved as in a shuffled dataset."""
    return torch.arange(classes).repeat(per_class)


def is_sorted_unique(index: torch.Tensor) -> bool:
    return bool((index[1:] > index[:-1]).all())


@pytest.mark.parametrize("val_size", [1, 37, 100, 499])
def test_val_split_partitions_every_index(val_size):
    labels = balanced()
    train, val = val_split(labels, val_size, seed=0)
    assert len(val) == val_size and len(train) == len(labels) - val_size
    assert is_sorted_unique(train) and is_sorted_unique(val)
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(len(labels)))


@pytest.mark.parametrize("val_size", [30, 37, 100])
def test_val_split_is_stratified(val_size):
    counts = torch.bincount(balanced()[val_split(balanced(), val_size, seed=1)[1]], minlength=10)
    assert int(counts.max() - counts.min()) <= 1  # exactly val_size / 10 each when divisible
    assert int(counts.sum()) == val_size


def test_val_split_follows_class_shares_when_unbalanced():
    labels = torch.cat([torch.zeros(300, dtype=torch.long), torch.ones(100, dtype=torch.long), torch.full((100,), 2)])
    counts = torch.bincount(labels[val_split(labels, 50, seed=0)[1]])
    assert counts.tolist() == [30, 10, 10]  # a uniform draw would give these only by chance


def test_val_split_is_uniform_when_some_images_are_unlabeled():
    labels = balanced()
    labels[:400] = UNLABELED
    train, val = val_split(labels, 100, seed=0)
    assert len(val) == 100 and (labels[val] == UNLABELED).any()
    assert not torch.equal(val, val_split(balanced(), 100, seed=0)[1])


def test_val_split_zero_and_errors():
    train, val = val_split(balanced(), 0, seed=0)
    assert torch.equal(train, torch.arange(500)) and len(val) == 0 and val.dtype == torch.long
    with pytest.raises(UserError, match="data.val_size"):
        val_split(balanced(), 500, seed=0)


def test_splits_are_deterministic_differ_by_seed_and_leave_global_rng_alone():
    labels, state = balanced(), torch.get_rng_state()
    assert torch.equal(val_split(labels, 100, seed=3)[1], val_split(labels, 100, seed=3)[1])
    assert not torch.equal(val_split(labels, 100, seed=3)[1], val_split(labels, 100, seed=4)[1])
    assert torch.equal(label_split(labels, 5, seed=3), label_split(labels, 5, seed=3))
    assert not torch.equal(label_split(labels, 5, seed=3), label_split(labels, 5, seed=4))
    assert torch.equal(torch.get_rng_state(), state)


def test_label_split_takes_exactly_n_per_class():
    labels = balanced()
    labels[::7] = UNLABELED
    chosen = label_split(labels, 20, seed=0)
    assert is_sorted_unique(chosen) and len(chosen) == 200
    assert torch.bincount(labels[chosen], minlength=10).tolist() == [20] * 10


def test_label_split_of_the_train_part_is_disjoint_from_val():
    labels = balanced()
    train, val = val_split(labels, 100, seed=0)
    labeled = train[label_split(labels[train], 10, seed=0)]
    assert not set(labeled.tolist()) & set(val.tolist())


def test_label_split_errors_name_the_class_and_count():
    labels = torch.cat([balanced(per_class=10), torch.full((3,), 10)])
    with pytest.raises(UserError, match="class 10 has only 3"):
        label_split(labels, 5, seed=0)
    with pytest.raises(UserError, match="labeled dataset"):
        label_split(torch.full((20,), UNLABELED), 5, seed=0)
