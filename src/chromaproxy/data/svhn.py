"""SVHN, the official cropped-digits files ("format 2"): ``train_32x32.mat`` and ``test_32x32.mat``.

Each file is a MATLAB v5 file with ``X``, (32, 32, 3, N) uint8 indexed (row, column, channel, image), and
``y``, (N, 1) labels 1..10 where 10 stands for the digit 0; classes here are the digits "0".."9", so label 10
becomes 0. Each file downloads on its own, with its md5 checked, so a partial copy fetches only what it
lacks. ``extra_32x32.mat`` (531,131 more labeled, easier digits) is not a split of this source: it is labeled,
so it is not the unlabeled split either; ``read_svhn_mat`` reads it for anyone who wants it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.io
import torch

from chromaproxy.data.download import download as download_file
from chromaproxy.data.download import made_for_download, missing_message
from chromaproxy.data.types import DatasetSplits, ImageSet
from chromaproxy.errors import UserError

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
TITLE = "SVHN"
FOLDER = "svhn"  # under data.root
SPLIT_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MD5 = {
    "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test_32x32.mat": "eb5a983be6a315427106f1b69d6a2226",
    "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7",
}
CLASSES = [str(digit) for digit in range(10)]
_UNREADABLE = (scipy.io.matlab.MatReadError, ValueError, TypeError, IndexError, KeyError, OSError, EOFError, zlib.error)


def load_svhn(
    root: Path, *, folder: Path | None = None, download: bool = True, progress: bool = True, base_url: str = SVHN_URL,
    md5: Mapping[str, str] = MD5,
) -> DatasetSplits:
    """Train and test from ``<root>/svhn/`` (or ``folder`` itself, when given), downloading each missing file
    from ``base_url``."""
    target = folder or root / FOLDER
    _fetch_missing(target, download, progress, base_url, md5)
    return DatasetSplits(
        name="svhn",
        train=read_svhn_mat(target / SPLIT_FILES["train"]),
        test=read_svhn_mat(target / SPLIT_FILES["test"]),
        location=str(target),
    )


def _fetch_missing(target: Path, allowed: bool, progress: bool, base_url: str, md5: Mapping[str, str]) -> None:
    """Download the split files ``target`` lacks, one by one, or explain exactly what to put where."""
    missing = [name for name in SPLIT_FILES.values() if not (target / name).is_file()]
    if missing and not allowed:
        raise UserError(_missing_message(target, base_url, missing, "data.download=false"))
    for name in missing:
        try:
            with made_for_download(target):
                download_file(base_url + name, target / name, md5[name], progress=progress)
        except OSError as err:
            still = [name for name in missing if not (target / name).is_file()]
            raise UserError(_missing_message(target, base_url, still, f"download failed: {err}")) from err


def _missing_message(target: Path, base_url: str, missing: list[str], why: str) -> str:
    expected = f'{", ".join(SPLIT_FILES.values())} (the official "cropped digits" files; missing: {", ".join(missing)})'
    fetch = "download " + " and ".join(base_url + name for name in missing) + " into it"
    return missing_message(TITLE, target, why, expected, fetch)


def _fix_hint(path: Path) -> str:
    return f"delete it and re-download {SVHN_URL}{path.name} (or point data.root at a good copy)"


def read_svhn_mat(path: Path) -> ImageSet:
    """One cropped-digits file as (N, 3, 32, 32) uint8 images and digit labels 0..9."""
    mat = _load_mat(path)
    absent = " and ".join(repr(key) for key in ("X", "y") if key not in mat)
    if absent:
        raise UserError(f"{path} lacks {absent}, the images and labels of an SVHN file; {_fix_hint(path)}")
    images, labels = mat["X"], mat["y"]
    problem = _mat_problem(images, labels)
    if problem:
        raise UserError(f"{path} is not a valid SVHN cropped-digits file: {problem}; {_fix_hint(path)}")
    pixels = np.ascontiguousarray(images.transpose(3, 2, 0, 1))  # (32, 32, 3, N) -> (N, 3, 32, 32)
    digits = labels.reshape(-1).astype(np.int64) % 10  # (N,): label 10 is the digit 0
    return ImageSet(torch.from_numpy(pixels), torch.from_numpy(digits), list(CLASSES))


def _load_mat(path: Path) -> dict[str, object]:
    """``X`` and ``y`` of a MATLAB v5 file, turning every way it can be unreadable into one named error."""
    try:
        return scipy.io.loadmat(path, variable_names=("X", "y"))
    except NotImplementedError as err:  # scipy reads v4 to v7.2; v7.3 files are HDF5
        problem = "a MATLAB v7.3 (HDF5) file, not an official v5 SVHN file"
        raise UserError(f"{path} is {problem}; {_fix_hint(path)}") from err
    except _UNREADABLE as err:
        problem = f"{type(err).__name__}: {err}"
        raise UserError(f"{path} is truncated or not a MATLAB .mat file ({problem}); {_fix_hint(path)}") from err


def _mat_problem(images: object, labels: object) -> str | None:
    """What is wrong with ``X`` and ``y``, or None when they are shaped like the official files."""
    if not _is_array(images, "u", 4) or images.dtype != np.uint8 or images.shape[:3] != (32, 32, 3):
        return f"'X' must be a (32, 32, 3, N) uint8 array, got {_describe(images)}"
    count = images.shape[3]
    if not _is_array(labels, "iuf", 2) or labels.shape != (count, 1):
        return f"{count} images but 'y' is {_describe(labels)} (expected ({count}, 1))"
    if labels.size and (labels.min() < 1 or labels.max() > 10 or np.any(labels != np.round(labels))):
        return f"labels outside 1..10 (found {labels.min():g}..{labels.max():g}; SVHN labels the digit 0 as 10)"
    return None


def _is_array(value: object, kinds: str, ndim: int) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind in kinds and value.ndim == ndim


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.shape} {value.dtype}"
    return type(value).__name__
