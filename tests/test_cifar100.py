"""The cifar100 and cifar100-20 sources: tiny files in the official layout, the real shared subset, their errors."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import data_root
from chromaproxy.data.cifar import CIFAR100, CIFAR100_20, load_cifar
from chromaproxy.data.sources import CIFAR100_EXPECTED, inspect, load_source
from chromaproxy.errors import UserError

DATA = data_root()
SUBSET = DATA / "cifar100_subset"


def _tiny_files(per_class: dict[str, int]) -> dict[str, dict]:
    """train/test/meta pickles like the official ones: (n, 3072) uint8 rows, label lists; coarse = fine // 5."""
    rng = np.random.default_rng(0)
    files: dict[str, dict] = {
        "meta": {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        }
    }
    for split, count in per_class.items():
        fine = [i % 100 for i in range(100 * count)]
        files[split] = {
            b"batch_label": f"{split} batch 1 of 1".encode(),
            b"fine_labels": fine,
            b"coarse_labels": [label // 5 for label in fine],
            b"data": rng.integers(1, 256, size=(len(fine), 3072), dtype=np.uint8),
        }
    return files


def _write(folder: Path, files: dict[str, dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content, protocol=4))


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, dict[str, dict]]:
    """A root with cifar100/cifar-100-python/ (the tarball's layout): 2 train and 1 test image per fine class."""
    files = _tiny_files({"train": 2, "test": 1})
    _write(tmp_path / "cifar100" / CIFAR100.archive_dir, files)
    return tmp_path, files


def test_fine_labels_pixels_and_names(tiny: tuple[Path, dict[str, dict]]) -> None:
    root, files = tiny
    splits = load_source("cifar100", root=str(root), download=False, progress=False)
    assert splits.name == "cifar100" and splits.location == str(root / "cifar100" / "cifar-100-python")
    assert splits.train.images.shape == (200, 3, 32, 32) and splits.test.images.shape == (100, 3, 32, 32)
    rows = files["train"][b"data"]
    assert splits.train.images[7, 1, 2, 5] == rows[7, 1024 + 2 * 32 + 5]  # G plane, row 2, column 5
    assert torch.equal(splits.train.images.flatten(1), torch.from_numpy(rows))
    assert splits.train.labels.tolist() == files["train"][b"fine_labels"]
    assert splits.train.classes[:2] == ["fine0", "fine1"] and len(splits.test.classes) == 100


def test_coarse_view_reads_the_same_files(tiny: tuple[Path, dict[str, dict]]) -> None:
    root, files = tiny
    fine = load_source("cifar100", root=str(root), download=False, progress=False)
    coarse = load_source("cifar100-20", root=str(root), download=False, progress=False)
    assert coarse.name == "cifar100-20" and coarse.location == fine.location
    assert torch.equal(coarse.train.images, fine.train.images)
    assert coarse.test.labels.tolist() == files["test"][b"coarse_labels"]
    assert torch.equal(coarse.train.labels, fine.train.labels // 5)
    assert coarse.train.classes == [f"coarse{i}" for i in range(20)]


def test_inspect_fails_sizes_and_balance_of_a_small_copy(tiny: tuple[Path, dict[str, dict]]) -> None:
    root, _ = tiny
    for name, classes in (("cifar100", 100), ("cifar100-20", 20)):
        report = inspect(load_source(name, root=str(root), download=False, progress=False))
        verdicts = {check: passed for check, passed, _ in report.checks}
        assert not verdicts["split sizes"] and not verdicts["class balance"]
        assert verdicts["image shape"] and verdicts["class count"] and verdicts["labels"] and verdicts["classes"]
        assert len(report.per_class["train"]) == classes


def test_inspect_passes_a_balanced_copy_of_the_expected_size(tiny: tuple[Path, dict[str, dict]]) -> None:
    """Balance means train // classes per class: 2 per fine class is 10 per coarse class."""
    root, _ = tiny
    small = replace(CIFAR100_EXPECTED, sizes={"train": 200, "test": 100}, train_mean_rgb=None)
    fine = load_source("cifar100", root=str(root), download=False, progress=False)
    coarse = load_source("cifar100-20", root=str(root), download=False, progress=False)
    assert inspect(fine, small).verdict == "ok"
    assert inspect(coarse, replace(small, num_classes=20)).verdict == "ok"
    assert inspect(coarse, small).verdict.startswith("FAILED: class count: 20 (expected 100)")


def test_missing_dataset_names_files_folder_and_archive(tmp_path: Path) -> None:
    for name in ("cifar100", "cifar100-20"):
        with pytest.raises(UserError) as err:
            load_source(name, root=str(tmp_path), download=False)
        message = str(err.value)
        assert "\n" not in message
        assert f"CIFAR-100 not found in {tmp_path / 'cifar100'} (data.download=false)" in message
        assert 'expected train, test, meta (the official "CIFAR-100 python version")' in message
        assert CIFAR100.url in message and "holds cifar100/" in message


def test_wrong_label_key_is_refused(tiny: tuple[Path, dict[str, dict]]) -> None:
    root, files = tiny
    batch = dict(files["test"])
    batch[b"labels"] = batch.pop(b"fine_labels")
    _write(root / "cifar100" / CIFAR100.archive_dir, {"test": batch})
    with pytest.raises(UserError, match=r"test lacks the keys b'data' and b'fine_labels' of a CIFAR-100 batch"):
        load_source("cifar100", root=str(root), download=False, progress=False)


def test_coarse_label_out_of_range_is_refused(tiny: tuple[Path, dict[str, dict]]) -> None:
    root, files = tiny
    batch = files["train"] | {b"coarse_labels": [20] * 200}
    _write(root / "cifar100" / CIFAR100.archive_dir, {"train": batch})
    load_source("cifar100", root=str(root), download=False, progress=False)  # fine labels are still good
    with pytest.raises(UserError, match=r"train is not a valid CIFAR-100 batch: labels outside 0\.\.19; delete"):
        load_source("cifar100-20", root=str(root), download=False, progress=False)


def test_meta_without_coarse_names_is_refused(tiny: tuple[Path, dict[str, dict]]) -> None:
    root, files = tiny
    meta = {b"fine_label_names": files["meta"][b"fine_label_names"]}
    _write(root / "cifar100" / CIFAR100.archive_dir, {"meta": meta})
    with pytest.raises(UserError, match=r"meta has no list of class names under b'coarse_label_names'"):
        load_source("cifar100-20", root=str(root), download=False, progress=False)


def test_truncated_train_file_is_named(tiny: tuple[Path, dict[str, dict]]) -> None:
    root, _ = tiny
    path = root / "cifar100" / CIFAR100.archive_dir / "train"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UserError, match=r"cifar-100-python/train is truncated.*re-download .*100-python\.tar\.gz"):
        load_source("cifar100", root=str(root), download=False, progress=False)


def test_download_from_file_url_serves_both_views(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in _tiny_files({"train": 1, "test": 1}).items():
            data = pickle.dumps(content, protocol=4)
            info = tarfile.TarInfo(f"{CIFAR100.archive_dir}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / "root"
    coarse = load_cifar(replace(CIFAR100_20, url=archive.as_uri(), md5=md5), root, download=True, progress=False)
    assert coarse.location == str(root / "cifar100" / "cifar-100-python") and len(coarse.train) == 100
    fine = load_source("cifar100", root=str(root), download=False, progress=False)
    assert torch.equal(fine.train.labels // 5, coarse.train.labels)


@pytest.fixture
def subset_root(tmp_path: Path) -> Path:
    if not all((SUBSET / name).is_file() for name in CIFAR100.files):
        pytest.skip(f"the CIFAR-100 subset is not under {DATA} (set CHROMAPROXY_DATA)")
    (tmp_path / "cifar100").symlink_to(SUBSET)
    return tmp_path


def test_real_subset_counts_labels_and_names(subset_root: Path) -> None:
    fine = load_source("cifar100", root=str(subset_root), download=False, progress=False)
    coarse = load_source("cifar100-20", root=str(subset_root), download=False, progress=False)
    assert (len(fine.train), len(fine.test)) == (486, 916) == (len(coarse.train), len(coarse.test))
    assert 0 <= int(fine.train.labels.min()) and int(fine.train.labels.max()) <= 99
    assert int(coarse.test.labels.min()) == 0 and int(coarse.test.labels.max()) == 19
    assert fine.train.classes[0] == "apple" and len(fine.train.classes) == 100
    assert coarse.train.classes[0] == "aquatic_mammals" and len(coarse.train.classes) == 20
    assert fine.test.classes[int(fine.test.labels[0])] == "mountain"  # test image 0, as in foolbox's PNGs
    pairs = torch.unique(torch.stack([fine.train.labels, coarse.train.labels]), dim=1)  # (2, distinct pairs)
    assert len(torch.unique(pairs[0])) == pairs.shape[1]  # each fine class lies in exactly one superclass


def test_real_subset_fails_only_the_checks_a_subset_should(subset_root: Path) -> None:
    report = inspect(load_source("cifar100-20", root=str(subset_root), download=False, progress=False))
    failed = {check for check, passed, _ in report.checks if not passed}
    assert failed == {"split sizes", "class balance"}
    assert report.splits == {"train": 486, "test": 916} and sum(report.per_class["test"]) == 916
