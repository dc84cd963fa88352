"""The stl10 source on tiny files in the official binary layout: orientation, labels, the memory-mapped unlabeled
split, its integrity report, folds, and every malformed-file error."""

from __future__ import annotations

import hashlib
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from chromaproxy.data import sources
from chromaproxy.data.sources import STL10_EXPECTED, channel_mean, inspect, load_source
from chromaproxy.data.stl10 import IMAGE_BYTES, STL10_URL, load_stl10, load_stl10_folds
from chromaproxy.data.types import UNLABELED, DatasetSplits
from chromaproxy.errors import UserError

CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
LABELS = {"train": [1, 10, 5, 3, 2, 4], "test": [10, 1, 7]}  # as stored: 1..10


def _pattern(count: int, offset: int) -> np.ndarray:
    """(count, 3, 96, 96) uint8 images whose value changes differently along rows and columns."""
    k, c, h, w = np.ogrid[:count, :3, :96, :96]
    return ((offset + 7 * k + 60 * c + h + 3 * w) % 251 + 1).astype(np.uint8)  # never zero


def _write_bin(path: Path, images: np.ndarray) -> None:
    """Each colour plane column by column, as the authors' MATLAB wrote them."""
    path.write_bytes(images.transpose(0, 1, 3, 2).tobytes())  # (N, 3, W, H)


def _write_stl10(folder: Path, unlabeled: int | None = 4) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = {split: _pattern(len(labels), offset) for offset, (split, labels) in enumerate(LABELS.items())}
    for split, labels in LABELS.items():
        _write_bin(folder / f"{split}_X.bin", images[split])
        (folder / f"{split}_y.bin").write_bytes(bytes(labels))
    if unlabeled is not None:
        images["unlabeled"] = _pattern(unlabeled, 100)
        _write_bin(folder / "unlabeled_X.bin", images["unlabeled"])
    (folder / "class_names.txt").write_text("\n".join(CLASSES) + "\n")
    return images


def _load(root: Path) -> DatasetSplits:
    return load_source("stl10", root=str(root), download=False, progress=False)


@pytest.mark.parametrize("inner", ["", "stl10_binary"])
def test_pixels_labels_and_names_in_either_layout(tmp_path: Path, inner: str) -> None:
    folder = tmp_path / "stl10" / inner
    written = _write_stl10(folder)
    splits = _load(tmp_path)
    assert splits.name == "stl10" and splits.location == str(folder)
    for split in ("train", "test", "unlabeled"):
        assert torch.equal(getattr(splits, split).images, torch.from_numpy(written[split])), split
    raw = np.fromfile(folder / "train_X.bin", dtype=np.uint8)
    k, c, h, w = 2, 1, 0, 95  # image 2, green, top-right pixel: byte c*96*96 + w*96 + h of its record
    assert splits.train.images[k, c, h, w] == raw[k * IMAGE_BYTES + c * 9216 + w * 96 + h]
    assert splits.train.images[k, c, h, w] != splits.train.images[k, c, w, h]  # orientation is observable
    assert splits.train.labels.tolist() == [0, 9, 4, 2, 1, 3] and splits.test.labels.tolist() == [9, 0, 6]
    assert splits.train.classes == CLASSES and splits.train.images.shape == (6, 3, 96, 96)
    assert splits.train.images.is_contiguous()
    assert splits.unlabeled is not None and (splits.unlabeled.labels == UNLABELED).all()


def _mapping_of(tensor: torch.Tensor) -> str | None:
    """The path /proc/self/maps gives for the memory holding ``tensor`` ('' for anonymous memory)."""
    address = tensor.untyped_storage().data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(bound, 16) for bound in fields[0].split("-"))
        if start <= address < end:
            return fields[5] if len(fields) == 6 else ""
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_unlabeled_split_is_a_mapping_of_the_file_not_a_copy(tmp_path: Path) -> None:
    _write_stl10(tmp_path / "stl10")
    splits = _load(tmp_path)
    path = tmp_path / "stl10" / "unlabeled_X.bin"
    assert _mapping_of(splits.unlabeled.images) == str(path)
    assert splits.unlabeled.images.untyped_storage().nbytes() == path.stat().st_size
    assert _mapping_of(splits.train.images) != str(tmp_path / "stl10" / "train_X.bin")  # labeled splits: in memory


def test_writing_through_the_mapped_split_leaves_the_file_alone(tmp_path: Path) -> None:
    _write_stl10(tmp_path / "stl10")
    before = (tmp_path / "stl10" / "unlabeled_X.bin").read_bytes()
    splits = _load(tmp_path)
    splits.unlabeled.images[0] = 0
    assert (tmp_path / "stl10" / "unlabeled_X.bin").read_bytes() == before


def test_inspect_reports_three_splits_and_fails_the_sizes_of_a_tiny_copy(tmp_path: Path) -> None:
    _write_stl10(tmp_path / "stl10")
    report = inspect(_load(tmp_path))
    assert report.splits == {"train": 6, "test": 3, "unlabeled": 4}
    assert report.per_class["unlabeled"] == [] and report.per_class["test"][9] == 1
    details = {check: (passed, detail) for check, passed, detail in report.checks}
    assert details["split sizes"] == (
        False, "train 6 (expected 5000), test 3 (expected 8000), unlabeled 4 (expected 100000)"
    )
    assert details["image shape"] == (True, "train 3x96x96, test 3x96x96, unlabeled 3x96x96")
    assert details["class balance"][0] is False and "unlabeled" not in details["class balance"][1]
    assert details["no all-zero images"][0] and "unlabeled 0" in details["no all-zero images"][1]
    assert "streamed" in details["no all-zero images"][1]
    assert details["pixel mean"][1].startswith("train RGB")


def test_inspect_passes_a_balanced_copy_and_finds_a_blank_unlabeled_image(tmp_path: Path) -> None:
    folder = tmp_path / "stl10"
    _write_stl10(folder)
    for split in LABELS:
        _write_bin(folder / f"{split}_X.bin", _pattern(10, 5))
        (folder / f"{split}_y.bin").write_bytes(bytes(range(1, 11)))
    small = replace(STL10_EXPECTED, sizes={"train": 10, "test": 10, "unlabeled": 4}, train_mean_rgb=None)
    assert inspect(_load(tmp_path), small).verdict == "ok"
    unlabeled = _pattern(4, 100)
    unlabeled[3] = 0
    _write_bin(folder / "unlabeled_X.bin", unlabeled)
    verdict = inspect(_load(tmp_path), small).verdict
    assert verdict.startswith("FAILED: no all-zero images: train 0, test 0, unlabeled 1")


def test_statistics_stream_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With chunks of 3 images the counts and means over 4 or 10 images cross chunk boundaries and still agree."""
    written = _write_stl10(tmp_path / "stl10")
    splits = _load(tmp_path)
    monkeypatch.setattr(sources, "CHUNK_BYTES", 3 * IMAGE_BYTES)
    assert [len(chunk) for chunk in sources.chunks(splits.unlabeled)] == [3, 1]
    expected = written["unlabeled"].astype(np.float64).mean(axis=(0, 2, 3))
    assert np.allclose(channel_mean(splits.unlabeled), expected)
    splits.unlabeled.images[3] = 0  # a private copy-on-write page: the file is untouched
    assert sources.blank_count(splits.unlabeled) == 1


def test_missing_unlabeled_file_leaves_the_split_out(tmp_path: Path) -> None:
    _write_stl10(tmp_path / "stl10", unlabeled=None)
    splits = _load(tmp_path)
    assert splits.unlabeled is None
    sizes = next(detail for check, _, detail in inspect(splits).checks if check == "split sizes")
    assert sizes.endswith("unlabeled 0 (expected 100000)")


def test_folds_are_read_and_checked(tmp_path: Path) -> None:
    folder = tmp_path / "stl10"
    _write_stl10(folder)
    with pytest.raises(UserError, match=r"fold_indices.txt not found: put the fold_indices.txt of the official"):
        load_stl10_folds(folder)
    (folder / "fold_indices.txt").write_text("0 2 4 \n1 3 5 \n")
    folds = load_stl10_folds(str(folder))
    assert [fold.tolist() for fold in folds] == [[0, 2, 4], [1, 3, 5]] and folds[0].dtype == np.int64
    (folder / "fold_indices.txt").write_text("0 2 4\n1 3 6\n")
    with pytest.raises(UserError, match=r"fold_indices.txt fold 2 has indices outside 0\.\.5"):
        load_stl10_folds(folder)
    (folder / "fold_indices.txt").write_text("0 two 4\n")
    with pytest.raises(UserError, match=r"fold 1 is not a list of whole numbers"):
        load_stl10_folds(folder)


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("train_X.bin", b"\x01" * (IMAGE_BYTES * 2 + 100), r"train_X.bin is truncated or not an STL-10 image file: "
         r"its 55396 bytes are not a whole, positive number of 27648-byte 3x96x96 images"),
        ("unlabeled_X.bin", b"", r"unlabeled_X.bin is truncated .* its 0 bytes"),
        ("test_y.bin", bytes([1, 2]), r"test_y.bin holds 2 labels for 3 images"),
        ("train_y.bin", bytes([1, 2, 3, 4, 5, 11]), r"train_y.bin has labels outside 1\.\.10 \(found 1\.\.11"),
        ("test_y.bin", bytes([0, 1, 2]), r"test_y.bin has labels outside 1\.\.10 \(found 0\.\.2"),
        ("class_names.txt", b"\n\n", r"class_names.txt holds no class names"),
    ],
)
def test_malformed_files_are_named_with_the_fix(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    _write_stl10(tmp_path / "stl10")
    (tmp_path / "stl10" / name).write_bytes(content)
    with pytest.raises(UserError, match=problem) as err:
        _load(tmp_path)
    message = str(err.value)
    assert "\n" not in message and message.endswith(f"re-download {STL10_URL} (or point data.root at a good copy)")


def test_missing_dataset_says_which_files_go_where(tmp_path: Path) -> None:
    (tmp_path / "stl10").mkdir()
    (tmp_path / "stl10" / "train_X.bin").write_bytes(b"")  # a partial copy counts as missing
    with pytest.raises(UserError) as err:
        _load(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"STL-10 not found in {tmp_path / 'stl10'} (data.download=false): expected train_X.bin, " in message
    assert "unlabeled_X.bin" in message and "stl10_binary/" in message and STL10_URL in message
    assert "holds stl10/" in message


def test_unreachable_download_gives_the_same_message(tmp_path: Path) -> None:
    url = (tmp_path / "nowhere.tar.gz").as_uri()
    with pytest.raises(UserError, match=r"STL-10 not found in .*download failed.*train_X\.bin"):
        load_stl10(tmp_path, download=True, progress=False, url=url)


def test_download_from_file_url_extracts_and_maps(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    _write_stl10(staging / "stl10_binary")
    archive = tmp_path / "stl10_binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / "stl10_binary", arcname="stl10_binary")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    splits = load_stl10(tmp_path / "root", download=True, progress=False, url=archive.as_uri(), md5=md5)
    assert splits.location == str(tmp_path / "root" / "stl10" / "stl10_binary")
    assert len(splits.train) == 6 and len(splits.unlabeled) == 4
