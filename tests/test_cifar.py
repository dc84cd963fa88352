"""The cifar10 source on the real files, its integrity report, its errors, and a download from a file:// URL."""

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
from chromaproxy.data.cifar import CIFAR10, load_cifar
from chromaproxy.data.download import download_and_extract, extract_safely
from chromaproxy.data.sources import inspect, load_source, resolve_root
from chromaproxy.data.types import DatasetSplits
from chromaproxy.errors import UserError

DATA = data_root()


@pytest.fixture(scope="module")
def cifar10() -> DatasetSplits:
    if not all((DATA / "cifar10" / name).is_file() for name in CIFAR10.files):
        pytest.skip(f"CIFAR-10 not found under {DATA} (set CHROMAPROXY_DATA to the folder holding cifar10/)")
    return load_source("cifar10", root=str(DATA), download=False, progress=False)


def test_cifar10_has_official_shapes_counts_and_labels(cifar10: DatasetSplits) -> None:
    train, test = cifar10.train, cifar10.test
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.classes[3] == "cat" and len(train.classes) == 10
    assert test.labels[0] == 3  # the first CIFAR-10 test image is a cat
    assert torch.bincount(train.labels).tolist() == [5000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert cifar10.location == str(DATA / "cifar10")


def test_inspect_reports_counts_and_ok_verdict(cifar10: DatasetSplits) -> None:
    report = inspect(cifar10)
    assert report.verdict == "ok"
    assert report.splits == {"train": 50000, "test": 10000}
    assert report.per_class["test"] == [1000] * 10
    assert {name for name, _, _ in report.checks} >= {"split sizes", "class balance", "pixel mean", "image shape"}


def test_inspect_fails_a_partial_or_altered_copy(cifar10: DatasetSplits) -> None:
    darker = cifar10.train.subset(torch.arange(1000))
    darker.images = darker.images // 2
    partial = DatasetSplits("cifar10", darker, None, "somewhere")
    verdict = inspect(partial).verdict
    assert verdict.startswith("FAILED:")
    for problem in ("split sizes", "class balance", "pixel mean"):
        assert problem in verdict


def _copy_with(tmp_path: Path, name: str, content: bytes) -> Path:
    """A root whose cifar10/ links to the real files except ``name``, which holds ``content``."""
    folder = tmp_path / "cifar10"
    folder.mkdir()
    for other in CIFAR10.files:
        if other != name:
            (folder / other).symlink_to(DATA / "cifar10" / other)
    (folder / name).write_bytes(content)
    return tmp_path


def test_truncated_batch_is_named_with_the_fix(cifar10: DatasetSplits, tmp_path: Path) -> None:
    head = (DATA / "cifar10" / "data_batch_1").read_bytes()[:100_000]
    root = _copy_with(tmp_path, "data_batch_1", head)
    with pytest.raises(UserError, match=r"data_batch_1 is truncated.*re-download") as err:
        load_source("cifar10", root=str(root), download=False, progress=False)
    assert "\n" not in str(err.value)


def test_wrongly_shaped_batch_is_refused(cifar10: DatasetSplits, tmp_path: Path) -> None:
    batch = {b"data": np.zeros((10, 100), dtype=np.uint8), b"labels": list(range(10))}
    root = _copy_with(tmp_path, "test_batch", pickle.dumps(batch, protocol=4))
    with pytest.raises(UserError, match=r"test_batch is not a valid CIFAR-10 batch: b'data' must be an \(n, 3072\)"):
        load_source("cifar10", root=str(root), download=False, progress=False)


def test_missing_dataset_offline_says_which_files_go_where(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        load_source("cifar10", root=str(tmp_path), download=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"not found in {tmp_path / 'cifar10'}" in message
    assert "data_batch_1..5, test_batch, batches.meta" in message
    assert CIFAR10.url in message and "CHROMAPROXY_DATA=DIR" in message


def test_unreachable_download_falls_back_to_the_same_message(tmp_path: Path) -> None:
    spec = replace(CIFAR10, url=(tmp_path / "nowhere.tar.gz").as_uri())
    with pytest.raises(UserError, match=r"not found in .*download failed.*data_batch_1\.\.5"):
        load_cifar(spec, tmp_path, download=True, progress=False)
    assert not (tmp_path / "cifar10").exists(), "a failed download must not leave an empty dataset folder"


def _tiny_cifar_tarball(tmp_path: Path, per_batch: int = 20) -> tuple[str, str]:
    """A tarball shaped like the official one (cifar-10-batches-py/…) with ``per_batch`` images per file."""
    rng = np.random.default_rng(0)
    files = {CIFAR10.meta_file: {b"label_names": [f"class{i}".encode() for i in range(10)]}}
    for name in CIFAR10.train_files + CIFAR10.test_files:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        files[name] = {b"data": data, b"labels": [i % 10 for i in range(per_batch)]}
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in files.items():
            _add_bytes(tar, f"{CIFAR10.archive_dir}/{name}", pickle.dumps(content, protocol=4))
    return archive.as_uri(), hashlib.md5(archive.read_bytes()).hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes, kind: bytes = tarfile.REGTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.type = len(content), kind
    tar.addfile(info, io.BytesIO(content))


def test_download_from_file_url_extracts_and_loads(tmp_path: Path) -> None:
    url, md5 = _tiny_cifar_tarball(tmp_path)
    root = tmp_path / "root"
    splits = load_cifar(replace(CIFAR10, url=url, md5=md5), root, download=True, progress=False)
    assert splits.train.images.shape == (100, 3, 32, 32) and len(splits.test) == 20
    assert splits.location == str(root / "cifar10" / CIFAR10.archive_dir)
    assert sorted(p.name for p in (root / "cifar10").iterdir()) == [CIFAR10.archive_dir]  # archive removed
    again = load_cifar(replace(CIFAR10, url="file:///unused", md5=md5), root, download=False, progress=False)
    assert torch.equal(again.train.images, splits.train.images)


def test_download_with_wrong_md5_is_refused_and_removed(tmp_path: Path) -> None:
    url, _ = _tiny_cifar_tarball(tmp_path)
    target = tmp_path / "root" / "cifar10"
    with pytest.raises(UserError, match="md5"):
        download_and_extract(url, "0" * 32, target, progress=False)
    assert not target.exists()  # neither the partial file nor the folder made for it is left behind


@pytest.mark.parametrize(
    "name, kind", [("../escaped", tarfile.REGTYPE), ("/tmp/absolute", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)]
)
def test_extraction_refuses_members_outside_the_target(tmp_path: Path, name: str, kind: bytes) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        _add_bytes(tar, name, b"x", kind)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(UserError, match="refusing to extract"):
        extract_safely(archive, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "escaped").exists()


def test_unknown_source_lists_valid_names_closest_first() -> None:
    with pytest.raises(UserError, match=r"data.name=cifar: choose one of cifar10, cifar100, cifar100-20, "):
        load_source("cifar")
    with pytest.raises(UserError, match=r"choose one of folder, "):
        load_source("folders")
    with pytest.raises(UserError, match=r"choose one of svhn, "):
        load_source("svnh")


def test_root_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHROMAPROXY_DATA", "/from/env")
    assert resolve_root("/explicit") == Path("/explicit")
    assert resolve_root(None) == Path("/from/env")
    monkeypatch.delenv("CHROMAPROXY_DATA")
    assert resolve_root(None) == Path.home() / ".cache" / "chromaproxy"
