"""The labels file's manifest and alignment checks, and the pseudo-labels every split of a run receives."""

from __future__ import annotations

import pytest
import torch

from chromaproxy.cluster.labels_file import (
    check_alignment, cluster_count, fingerprint, manifest, pseudo_labels_for, read_header, write_labels,
)
from chromaproxy.config import load_config
from chromaproxy.data.types import ImageSet
from chromaproxy.errors import UserError

IMAGES = ImageSet(torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8), torch.arange(40) % 4, list("abcd"))


def test_the_fingerprint_changes_with_order_count_and_pixels_but_not_labels():
    base = fingerprint(IMAGES)
    assert fingerprint(IMAGES.subset(torch.arange(40).flip(0))) != base
    assert fingerprint(IMAGES.subset(torch.arange(39))) != base
    changed = IMAGES.images.clone()
    changed[0, 0, 0, 0] ^= 1
    assert fingerprint(ImageSet(changed, IMAGES.labels, IMAGES.classes)) != base
    assert fingerprint(ImageSet(IMAGES.images, torch.zeros(40, dtype=torch.long), IMAGES.classes)) == base


def _cfg(*extra: str):
    return load_config(None, ["tasks=[rotation,pseudolabel]", "task_weights=[1,0.05]", *extra])


def test_write_then_read_round_trips_and_the_alignment_check_names_what_differs(tmp_path):
    soft = {"overcluster": torch.rand(40, 7).softmax(1), "clusters": torch.rand(40, 4).softmax(1)}
    info = manifest(_cfg(), IMAGES)
    write_labels(tmp_path / "labels.safetensors", soft, info, {"metrics": {}})
    header = read_header(str(tmp_path), "overcluster")
    assert header["heads"] == {"overcluster": 7, "clusters": 4}
    check_alignment(header, info, "x")  # the same images pass
    cfg = _cfg(f"pseudolabel.labels={tmp_path}")
    assert torch.equal(pseudo_labels_for(cfg, IMAGES), soft["overcluster"].argmax(1))
    assert cluster_count(cfg.pseudolabel, 4) == 7
    with pytest.raises(UserError, match="was made for fingerprint"):
        check_alignment(header, manifest(cfg, IMAGES.subset(torch.arange(40).flip(0))), "x")
    with pytest.raises(UserError, match="was made for split 'train', this run trains on 'unlabeled'"):
        check_alignment(header, {**info, "split": "unlabeled"}, "x")
    with pytest.raises(UserError, match="has no head 'other'"):
        read_header(str(tmp_path), "other")


def test_ground_truth_and_random_sources_need_no_file():
    truth = pseudo_labels_for(_cfg("pseudolabel.labels=ground-truth"), IMAGES)
    assert torch.equal(truth, IMAGES.labels)
    random = pseudo_labels_for(_cfg("pseudolabel.labels=random", "pseudolabel.k=5"), IMAGES)
    assert random.shape == (40,) and random.max() < 5 and len(random.unique()) > 1
    assert torch.equal(random, pseudo_labels_for(_cfg("pseudolabel.labels=random", "pseudolabel.k=5"), IMAGES))
    with pytest.raises(UserError, match="needs pseudolabel.labels"):
        pseudo_labels_for(_cfg(), IMAGES)


def test_subsets_carry_their_pseudo_labels():
    labelled = ImageSet(IMAGES.images, IMAGES.labels, IMAGES.classes, torch.arange(40))
    assert torch.equal(labelled.subset(torch.tensor([3, 1])).pseudo_labels, torch.tensor([3, 1]))
    with pytest.raises(ValueError, match="pseudo_labels must be"):
        ImageSet(IMAGES.images, IMAGES.labels, IMAGES.classes, torch.arange(3))
