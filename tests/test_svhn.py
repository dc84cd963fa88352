"""The svhn source on tiny .mat files in the official cropped-digits format: orientation, the 10 -> 0 label,
its integrity report, per-file download, and every malformed-file error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from chromaproxy.data.sources import inspect, load_source
from chromaproxy.data.svhn import MD5, SVHN_URL, load_svhn
from chromaproxy.data.types import DatasetSplits
from chromaproxy.errors import UserError

LABELS = {"train": [10, 1, 2, 9, 10], "test": [3, 10, 7]}  # as stored: 10 is the digit 0


def _digits(count: int, offset: int) -> np.ndarray:
    """X as the official files hold it: (32, 32, 3, N) uint8, (row, column, channel, image)."""
    h, w, c, n = np.ogrid[:32, :32, :3, :count]
    return ((offset + h + 5 * w + 70 * c + 11 * n) % 251 + 1).astype(np.uint8)


def _write_mat(path: Path, variables: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)


def _write_svhn(folder: Path) -> dict[str, np.ndarray]:
    images = {}
    for offset, (split, labels) in enumerate(LABELS.items()):
        images[split] = _digits(len(labels), offset)
        y = np.array(labels, dtype=np.uint8).reshape(-1, 1)  # (N, 1)
        _write_mat(folder / f"{split}_32x32.mat", {"X": images[split], "y": y})
    return images


def _load(root: Path) -> DatasetSplits:
    return load_source("svhn", root=str(root), download=False, progress=False)


def test_pixels_labels_and_classes(tmp_path: Path) -> None:
    written = _write_svhn(tmp_path / "svhn")
    splits = _load(tmp_path)
    assert splits.name == "svhn" and splits.location == str(tmp_path / "svhn")
    assert splits.train.images.shape == (5, 3, 32, 32) and splits.train.images.is_contiguous()
    X = written["train"]
    assert splits.train.images[3, 2, 0, 31] == X[0, 31, 2, 3]  # image 3, blue, top-right: X(row, column, channel, n)
    assert splits.train.images[3, 2, 0, 31] != splits.train.images[3, 2, 31, 0]
    assert torch.equal(splits.test.images, torch.from_numpy(written["test"].transpose(3, 2, 0, 1).copy()))
    assert splits.train.labels.tolist() == [0, 1, 2, 9, 0] and splits.test.labels.tolist() == [3, 0, 7]
    assert splits.train.labels.dtype == torch.int64
    assert splits.train.classes == [str(digit) for digit in range(10)]


def test_labels_stored_as_matlab_doubles_are_accepted(tmp_path: Path) -> None:
    _write_svhn(tmp_path / "svhn")
    y = np.array([[10.0], [4.0], [1.0]])  # (3, 1) float64
    _write_mat(tmp_path / "svhn" / "test_32x32.mat", {"X": _digits(3, 0), "y": y})
    assert _load(tmp_path).test.labels.tolist() == [0, 4, 1]


def test_inspect_checks_sizes_and_mean_but_not_balance(tmp_path: Path) -> None:
    _write_svhn(tmp_path / "svhn")
    report = inspect(_load(tmp_path))
    details = {check: (passed, detail) for check, passed, detail in report.checks}
    assert "class balance" not in details
    assert details["split sizes"] == (False, "train 5 (expected 73257), test 3 (expected 26032)")
    assert details["image shape"][0] and details["class count"][0] and details["labels"][0]
    assert "known (111.6, 113.2, 120.6)" in details["pixel mean"][1]
    assert details["classes"] == (False, "6 of 10 classes have no training image: 3, 4, 5, 6, 7, 8")
    assert report.per_class["train"] == [2, 1, 1, 0, 0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    "variables, problem",
    [
        ({"X": _digits(5, 0)}, r"train_32x32.mat lacks 'y', the images and labels of an SVHN file"),
        ({"images": _digits(5, 0), "labels": np.ones((5, 1))}, r"lacks 'X' and 'y', the images and labels"),
        ({"X": _digits(5, 0)[:28, :28], "y": np.ones((5, 1))},
         r"not a valid SVHN cropped-digits file: 'X' must be a \(32, 32, 3, N\) uint8 array, got \(28, 28, 3, 5\)"),
        ({"X": _digits(5, 0).astype(np.float64), "y": np.ones((5, 1))}, r"got \(32, 32, 3, 5\) float64"),
        ({"X": _digits(5, 0), "y": np.ones((4, 1))}, r"5 images but 'y' is \(4, 1\) float64 \(expected \(5, 1\)\)"),
        ({"X": _digits(5, 0), "y": np.array([[1], [2], [0], [4], [5]])}, r"labels outside 1\.\.10 \(found 0\.\.5;"),
        ({"X": _digits(5, 0), "y": np.array([[1], [2], [11], [4], [5]])}, r"labels outside 1\.\.10 \(found 1\.\.11;"),
        ({"X": _digits(5, 0), "y": np.full((5, 1), 2.5)}, r"labels outside 1\.\.10"),
    ],
)
def test_malformed_mat_files_are_named_with_the_fix(tmp_path: Path, variables: dict, problem: str) -> None:
    _write_svhn(tmp_path / "svhn")
    _write_mat(tmp_path / "svhn" / "train_32x32.mat", variables)
    with pytest.raises(UserError, match=problem) as err:
        _load(tmp_path)
    message = str(err.value)
    assert "\n" not in message and message.endswith(f"{SVHN_URL}train_32x32.mat (or point data.root at a good copy)")


@pytest.mark.parametrize("cut", [0, 100, 2000])
def test_truncated_or_foreign_file_is_named(tmp_path: Path, cut: int) -> None:
    _write_svhn(tmp_path / "svhn")
    path = tmp_path / "svhn" / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:cut] if cut else b"<html>404 Not Found</html>" * 10)
    with pytest.raises(UserError, match=r"test_32x32.mat is truncated or not a MATLAB \.mat file \(") as err:
        _load(tmp_path)
    assert "\n" not in str(err.value)


def test_missing_files_are_listed_with_their_urls(tmp_path: Path) -> None:
    _write_svhn(tmp_path / "svhn")
    (tmp_path / "svhn" / "test_32x32.mat").unlink()
    with pytest.raises(UserError) as err:
        _load(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"SVHN not found in {tmp_path / 'svhn'} (data.download=false): expected train_32x32.mat, " in message
    assert "missing: test_32x32.mat)" in message and f"download {SVHN_URL}test_32x32.mat into it" in message
    assert f"{SVHN_URL}train_32x32.mat" not in message and "holds svhn/" in message


def test_only_missing_files_are_downloaded_and_checked(tmp_path: Path) -> None:
    """The mirror holds only test_32x32.mat: a download of train (present locally) would fail."""
    mirror = tmp_path / "mirror"
    _write_svhn(mirror)
    (mirror / "train_32x32.mat").unlink()
    root = tmp_path / "root"
    _write_svhn(root / "svhn")
    (root / "svhn" / "test_32x32.mat").unlink()
    md5 = dict(MD5, **{"test_32x32.mat": hashlib.md5((mirror / "test_32x32.mat").read_bytes()).hexdigest()})
    splits = load_svhn(root, progress=False, base_url=mirror.as_uri() + "/", md5=md5)
    assert splits.test.labels.tolist() == [3, 0, 7]
    (root / "svhn" / "test_32x32.mat").unlink()
    with pytest.raises(UserError, match=r"test_32x32.mat downloaded with md5 .* expected eb5a983b"):
        load_svhn(root, progress=False, base_url=mirror.as_uri() + "/")
    assert sorted(p.name for p in (root / "svhn").iterdir()) == ["train_32x32.mat"]


def test_unreachable_download_lists_what_is_still_missing(tmp_path: Path) -> None:
    nowhere = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(UserError, match=r"SVHN not found in .*download failed.*missing: train_32x32.mat, test_32x32"):
        load_svhn(tmp_path, progress=False, base_url=nowhere)
