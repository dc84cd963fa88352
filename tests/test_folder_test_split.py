"""data.test_fraction: a folder of class sub-folders without test/ gets a seeded, stratified test split
that pretraining leaves out and evaluation rebuilds identically."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from chromaproxy.data.splits import held_out_test
from chromaproxy.data.types import DatasetSplits, ImageSet
from chromaproxy.errors import UserError
from conftest import REPO


def _splits(n: int = 40, test: bool = False) -> DatasetSplits:
    images = ImageSet(torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 4, 4).clone(),
                      torch.arange(n) % 4, ["a", "b", "c", "d"])
    return DatasetSplits(name="folder", train=images, test=images if test else None, location="/photos")


def test_held_out_split_is_stratified_disjoint_and_seeded():
    source = _splits()
    held, index = held_out_test(source, 0.2, seed=3)
    assert len(held.test) == 8 and len(held.train) == 32
    assert torch.bincount(held.test.labels).tolist() == [2, 2, 2, 2]
    trained = set(held.train.images[:, 0, 0, 0].tolist())
    assert trained.isdisjoint(held.test.images[:, 0, 0, 0].tolist())
    assert torch.equal(held.test.images[:, 0, 0, 0].long(), index)
    assert torch.equal(held_out_test(source, 0.2, seed=3)[1], index)
    assert not torch.equal(held_out_test(source, 0.2, seed=4)[1], index)
    assert held_out_test(source, 0.0, seed=3)[0] is source


def test_a_dataset_with_a_test_split_refuses_the_fraction():
    with pytest.raises(UserError, match="already has one; drop data.test_fraction"):
        held_out_test(_splits(test=True), 0.1, seed=0)
    with pytest.raises(UserError, match="holds out none"):
        held_out_test(_splits(n=4), 0.01, seed=0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ))


def test_folder_run_is_evaluated_on_its_held_out_images(tmp_path):
    from PIL import Image

    for index in range(40):
        name = ("cats", "dogs")[index % 2]
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = (200, 40 + index, 40) if name == "cats" else (40, 40 + index, 200)
        Image.new("RGB", (30, 30), colour).save(folder / f"{index}.png")
    run = tmp_path / "run"
    folder_keys = ["data.name=folder", f"data.path={tmp_path / 'photos'}", "data.image_size=16"]
    refused = _cli("evaluate", "--random", REPO / "configs/supervised-cifar10-quick.yaml", "--out", tmp_path / "r",
                   *folder_keys, "model.blocks=3", "model.width=0.125")
    assert refused.returncode == 2 and "data.test_fraction=0.1" in refused.stderr
    trained = _cli("pretrain", REPO / "configs/supervised-cifar10-quick.yaml", *folder_keys, "data.test_fraction=0.25",
                   "model.blocks=3", "model.width=0.125", "train.batch_size=10", "train.max_steps=2", f"out={run}")
    assert trained.returncode == 0, trained.stderr
    assert len(json.loads((run / "splits.json").read_text())["held_out_test"]) == 10
    evaluated = _cli("evaluate", run, "--protocol", "knn", "knn.ks=[1]")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((run / "eval" / "knn.json").read_text())
    assert report["manifest"]["splits"] == {"train": 30, "test": 10}
