"""Every standard dataset from the command line: ``data info`` and a one-epoch pretrain with ``data.limit``.

CIFAR-100 is the real subset in ../shared/data (linked as ``<root>/cifar100``); STL-10 and SVHN are small
random sets written in their official formats, since the real files are not available offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from chromaproxy.config import load_config
from chromaproxy.engine.data import prepare_data
from chromaproxy.errors import UserError
from conftest import REPO, data_root

ROTATION = REPO / "configs" / "rotation-cifar10-quick.yaml"
TINY = ["model.width=0.125", "model.blocks=3", "train.batch_size=16", "train.epochs=1", "eval.test_limit=32"]


def write_stl10(folder: Path, labeled: int = 40, unlabeled: int = 48) -> None:
    """Random 96x96 images in the binary layout (planes column-major), labels 1..10 as stored."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split, count in (("train", labeled), ("test", labeled), ("unlabeled", unlabeled)):
        (folder / f"{split}_X.bin").write_bytes(rng.integers(1, 256, (count, 3, 96, 96), dtype=np.uint8).tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes(bytes(int(k) % 10 + 1 for k in range(count)))
    (folder / "class_names.txt").write_text("\n".join(f"class{k}" for k in range(10)) + "\n")


def write_svhn(folder: Path, count: int = 64) -> None:
    """Random digits as the .mat files hold them: X (32, 32, 3, N), y (N, 1) with 10 for the digit 0."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        x = rng.integers(1, 256, (32, 32, 3, count), dtype=np.uint8)
        y = (np.arange(count) % 10 + 1).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y})


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root holding the CIFAR-100 subset, a small STL-10 and a small SVHN."""
    subset = data_root() / "cifar100_subset"
    if not (subset / "train").is_file():
        pytest.skip(f"the CIFAR-100 subset is not under {data_root()} (set CHROMAPROXY_DATA)")
    base = tmp_path_factory.mktemp("data")
    (base / "cifar100").symlink_to(subset)
    write_stl10(base / "stl10")
    write_svhn(base / "svhn")
    return base


def cli(root: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHROMAPROXY_DATA": str(root), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("name", "verdict"),
    [("cifar100", "FAILED: classes"), ("cifar100-20", "FAILED: split sizes"), ("stl10", "FAILED: split sizes"),
     ("svhn", "FAILED: split sizes")],
)
def test_data_info_reads_each_dataset_and_reports_a_small_copy_honestly(root, name, verdict):
    result = cli(root, "data", "info", name)
    assert result.returncode == 1, result.stderr  # loads, but is not the complete dataset
    assert "images per class" in result.stdout and f"integrity: {verdict}" in result.stdout


@pytest.mark.parametrize(
    ("name", "extra"),
    [("cifar100-20", ["data.limit=96"]), ("svhn", ["data.limit=48"]),
     ("stl10", ["data.image_size=96", "data.unlabeled=true", "data.limit=32"])],
)
def test_one_epoch_pretrain_on_each_dataset(root, tmp_path, name, extra):
    run = tmp_path / "run"
    result = cli(root, "pretrain", ROTATION, f"data.name={name}", *TINY, *extra, f"out={run}")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["split"] == "test" and np.isfinite(records[-1]["loss"])


def test_image_size_must_match_a_standard_dataset(root):
    cfg = load_config(ROTATION, [f"data.root={root}", "data.name=stl10"])
    with pytest.raises(UserError, match="has 96x96 images but data.image_size=32; set data.image_size=96"):
        prepare_data(cfg, None, progress=False)


def test_unlabeled_split_is_trained_on_without_a_copy_and_refused_to_supervised_tasks(root):
    cfg = load_config(ROTATION, [f"data.root={root}", "data.name=stl10", "data.image_size=96", "data.unlabeled=true"])
    data = prepare_data(cfg, None, progress=False)
    assert len(data.train) == 48 and not data.train.labeled
    assert not data.train.images.is_contiguous()  # still the transposed view of the mapped file
    supervised = load_config(REPO / "configs/supervised-cifar10-quick.yaml",
                             [f"data.root={root}", "data.name=stl10", "data.image_size=96", "data.unlabeled=true"])
    with pytest.raises(UserError, match="task supervised needs labels"):
        prepare_data(supervised, None, progress=False)
    cifar = load_config(ROTATION, [f"data.root={root}", "data.name=svhn", "data.unlabeled=true"])
    with pytest.raises(UserError, match="data.name=svhn has no unlabeled split"):
        prepare_data(cifar, None, progress=False)


def test_a_standard_dataset_kept_under_another_name_is_found_with_data_path(root, tmp_path):
    subset = root / "cifar100"  # a link to ../shared/data/cifar100_subset
    info = cli(tmp_path, "data", "info", "cifar100", "--path", subset)
    assert info.returncode == 1 and "train 486, test 916" in info.stdout, info.stderr
    run = tmp_path / "run"
    result = cli(tmp_path, "pretrain", ROTATION, "data.name=cifar100", f"data.path={subset}", "data.limit=48", *TINY,
                 f"out={run}")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cifar100").exists()
