"""STL-10 in the official binary layout: labeled splits in memory, the 100,000 unlabeled images memory-mapped.

Each ``*_X.bin`` is a headerless run of uint8 images, 3 x 96 x 96, every colour plane written column by column
(the authors saved them from MATLAB), so a plain (N, 3, 96, 96) reshape holds transposed images and the last two
axes are swapped. ``*_y.bin`` holds one uint8 label, 1..10, per image. The unlabeled split is 2.8 GB: it is
mapped, not read, so loading it costs nothing and pixels come off disk only for the images a batch indexes.
The archive also ships ``fold_indices.txt``, the 10 predefined folds of 1,000 training images
(``load_stl10_folds``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from chromaproxy.data.download import fetch_archive, missing_message
from chromaproxy.data.types import UNLABELED, DatasetSplits, ImageSet
from chromaproxy.errors import UserError

STL10_URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
STL10_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
TITLE = "STL-10"
FOLDER = "stl10"  # under data.root
ARCHIVE_DIR = "stl10_binary"  # the folder the official tarball extracts to
SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE  # 27648
CLASS_NAMES = "class_names.txt"
REQUIRED = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", CLASS_NAMES)
UNLABELED_FILE = "unlabeled_X.bin"  # optional: without it the source has no unlabeled split
FOLDS_FILE = "fold_indices.txt"


def load_stl10(
    root: Path, *, folder: Path | None = None, download: bool = True, progress: bool = True, url: str = STL10_URL,
    md5: str = STL10_MD5,
) -> DatasetSplits:
    """Train and test from ``<root>/stl10/`` (or ``folder`` itself, when given; or the ``stl10_binary/``
    inside either), plus the unlabeled split when present.

    A missing ``unlabeled_X.bin`` does not trigger a 2.6 GB download: someone who deleted it to save space
    still gets the labeled splits, and ``data info`` reports the split as missing.
    """
    target = folder or root / FOLDER
    folder = find_stl10(target) or _fetch(target, download, progress, url, md5)
    classes = _read_class_names(folder / CLASS_NAMES)
    unlabeled = folder / UNLABELED_FILE
    return DatasetSplits(
        name="stl10",
        train=_read_split(folder, "train", classes),
        test=_read_split(folder, "test", classes),
        location=str(folder),
        unlabeled=map_unlabeled(unlabeled, classes) if unlabeled.is_file() else None,
    )


def find_stl10(target: Path) -> Path | None:
    """The folder holding the labeled files: ``target`` itself or the tarball's ``stl10_binary/`` in it."""
    for folder in (target, target / ARCHIVE_DIR):
        if all((folder / name).is_file() for name in REQUIRED):
            return folder
    return None


def _fetch(target: Path, download: bool, progress: bool, url: str, md5: str) -> Path:
    """Download and extract the official archive, or explain exactly what to put where."""
    missing = partial(_missing_message, target, url)
    fetch_archive(url, md5, target, download=download, progress=progress, missing=missing)
    folder = find_stl10(target)
    if folder is None:
        raise UserError(missing(f"the archive from {url} lacks some of these files"))
    return folder


def _missing_message(target: Path, url: str, why: str) -> str:
    files = f"{', '.join(REQUIRED)} (and, for the unlabeled split and the folds, {UNLABELED_FILE}, {FOLDS_FILE})"
    expected = f'{files}: the official "STL-10 binary files", directly in it or in {ARCHIVE_DIR}/'
    return missing_message(TITLE, target, why, expected, f"download {url} and extract it there")


def _fix_hint() -> str:
    return f"delete it and re-download {STL10_URL} (or point data.root at a good copy)"


def _read_class_names(path: Path) -> list[str]:
    """One class name per line, in label order (label 1 is the first line)."""
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not a text file of class names ({err}); {_fix_hint()}") from err
    if not names:
        raise UserError(f"{path} holds no class names (one per line expected); {_fix_hint()}")
    return names


def _read_split(folder: Path, split: str, classes: list[str]) -> ImageSet:
    """A labeled split copied into memory (at most 221 MB) so that batches gather from contiguous images."""
    images = _map_images(folder / f"{split}_X.bin").contiguous()  # (N, 3, 96, 96), read once
    labels = _read_labels(folder / f"{split}_y.bin", len(images), len(classes))
    return ImageSet(images, labels, classes)


def map_unlabeled(path: Path, classes: list[str]) -> ImageSet:
    """The unlabeled split as a view of the file: no pixel is read until something indexes the images."""
    images = _map_images(path)
    return ImageSet(images, torch.full((len(images),), UNLABELED, dtype=torch.int64), classes)


def _map_images(path: Path) -> torch.Tensor:
    """``path`` memory-mapped as (N, 3, H, W) uint8 without reading it.

    Copy-on-write mode keeps the file read-only while giving torch the writable array it expects; a write
    through the tensor changes private pages, never the file.
    """
    raw = np.memmap(path, dtype=np.uint8, mode="c", shape=(_image_count(path), 3, SIDE, SIDE))  # (N, 3, W, H)
    return torch.from_numpy(raw).transpose(2, 3)  # (N, 3, H, W): planes are stored column-major


def _image_count(path: Path) -> int:
    """How many 3x96x96 images ``path`` holds, refusing a size that is not a whole positive number of them."""
    size = path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise UserError(
            f"{path} is truncated or not an STL-10 image file: its {size} bytes are not a whole, positive number "
            f"of {IMAGE_BYTES}-byte 3x96x96 images; {_fix_hint()}"
        )
    return size // IMAGE_BYTES


def _read_labels(path: Path, count: int, num_classes: int) -> torch.Tensor:
    """The file's uint8 labels 1..num_classes as int64 0..num_classes-1, one per image of the split."""
    raw = np.fromfile(path, dtype=np.uint8)  # (N,)
    if raw.size != count:
        raise UserError(f"{path} holds {raw.size} labels for {count} images; {_fix_hint()}")
    if raw.min() < 1 or raw.max() > num_classes:
        raise UserError(
            f"{path} has labels outside 1..{num_classes} (found {raw.min()}..{raw.max()}, "
            f"{num_classes} classes in {CLASS_NAMES}); {_fix_hint()}"
        )
    return torch.from_numpy(raw.astype(np.int64) - 1)


def load_stl10_folds(folder: str | Path) -> list[np.ndarray]:
    """STL-10's 10 predefined training folds (1,000 train indices each, 0-based) from ``fold_indices.txt``.

    ``folder`` is where the binary files are (``DatasetSplits.location``). The folds exist so that results
    on 10 x 1,000 labeled images are comparable between papers; averaging over them is the official protocol.
    """
    folder = Path(folder)
    path = folder / FOLDS_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: put the {FOLDS_FILE} of the official archive ({STL10_URL}) there")
    train_size = _image_count(folder / "train_X.bin")
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return [_parse_fold(path, number, line, train_size) for number, line in enumerate(lines, 1)]


def _parse_fold(path: Path, number: int, line: str, train_size: int) -> np.ndarray:
    try:
        fold = np.array(line.split(), dtype=np.int64)
    except ValueError as err:
        raise UserError(f"{path} fold {number} is not a list of whole numbers; {_fix_hint()}") from err
    if fold.min() < 0 or fold.max() >= train_size:
        raise UserError(f"{path} fold {number} has indices outside 0..{train_size - 1}; {_fix_hint()}")
    return fold
