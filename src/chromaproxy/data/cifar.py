"""CIFAR in the official "python version" layout: load, validate, and download when missing (``download``).

A ``CifarSpec`` names the files and pickle keys of one CIFAR variant, so CIFAR-100 (files ``train``,
``test``, ``meta``; keys ``fine_labels`` / ``fine_label_names``) is one more spec, not more code, and so is its
20-superclass view (same files, keys ``coarse_labels`` / ``coarse_label_names``). Files are read
with the restricted unpickler. The md5 of the archive is checked right after a download and never on files
already on disk: copies such as the one the tests use differ from the official bytes only in placeholder
file names, so integrity of existing files is judged from structure and statistics (``sources.inspect``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from chromaproxy.data.download import fetch_archive, missing_message
from chromaproxy.data.types import DatasetSplits, ImageSet
from chromaproxy.data.unpickle import safe_load
from chromaproxy.errors import UserError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR variant's files are and which pickle keys hold its labels and class names."""

    name: str  # the source name (data.name), e.g. "cifar100-20"
    folder: str  # folder under data.root, e.g. "cifar100": variants of one dataset share its files
    title: str  # how the authors name it, e.g. "CIFAR-10"
    url: str
    md5: str
    archive_dir: str  # the folder the official tarball extracts to
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: bytes
    names_key: bytes

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files, self.meta_file)


CIFAR10 = CifarSpec(
    name="cifar10",
    folder="cifar10",
    title="CIFAR-10",
    url=CIFAR10_URL,
    md5=CIFAR10_MD5,
    archive_dir="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    meta_file="batches.meta",
    label_key=b"labels",
    names_key=b"label_names",
)

CIFAR100 = CifarSpec(
    name="cifar100",
    folder="cifar100",
    title="CIFAR-100",
    url=CIFAR100_URL,
    md5=CIFAR100_MD5,
    archive_dir="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    meta_file="meta",
    label_key=b"fine_labels",
    names_key=b"fine_label_names",
)

# IIC's "CIFAR-100-20": the same files labelled with the 20 coarse superclasses.
CIFAR100_20 = replace(CIFAR100, name="cifar100-20", label_key=b"coarse_labels", names_key=b"coarse_label_names")


def load_cifar(
    spec: CifarSpec, root: Path, *, folder: Path | None = None, download: bool = True, progress: bool = True
) -> DatasetSplits:
    """Both splits of ``spec`` from ``<root>/<folder>/`` (or ``folder`` itself, when given; or the
    ``archive_dir`` inside either), downloading them if missing."""
    target = folder or root / spec.folder
    found = find_files(spec, target) or _fetch(spec, target, download, progress)
    classes = _read_class_names(spec, found)
    return DatasetSplits(
        name=spec.name,
        train=_read_split(spec, found, spec.train_files, classes),
        test=_read_split(spec, found, spec.test_files, classes),
        location=str(found),
    )


def find_files(spec: CifarSpec, target: Path) -> Path | None:
    """The folder holding every file of ``spec``: ``target`` itself or the tarball's sub-folder in it."""
    for folder in (target, target / spec.archive_dir):
        if all((folder / name).is_file() for name in spec.files):
            return folder
    return None


def _fetch(spec: CifarSpec, target: Path, download: bool, progress: bool) -> Path:
    """Download and extract the official archive, or explain exactly what to put where."""
    missing = partial(_missing_message, spec, target)
    fetch_archive(spec.url, spec.md5, target, download=download, progress=progress, missing=missing)
    folder = find_files(spec, target)
    if folder is None:
        raise UserError(missing(f"the archive from {spec.url} lacks some of these files"))
    return folder


def _missing_message(spec: CifarSpec, target: Path, why: str) -> str:
    expected = f'{_describe_files(spec)} (the official "{spec.title} python version")'
    return missing_message(spec.title, target, why, expected, f"download {spec.url} and extract it there")


def _describe_files(spec: CifarSpec) -> str:
    """``data_batch_1..5, test_batch, batches.meta``: a numbered run of train files written once."""
    train = spec.train_files
    if len(train) > 1:
        stem = os.path.commonprefix(train)
        train = (f"{train[0]}..{train[-1][len(stem):]}",)
    return ", ".join((*train, *spec.test_files, spec.meta_file))


def _fix_hint(spec: CifarSpec) -> str:
    return f"delete it and re-download {spec.url} (or point data.root at a good copy)"


def _read_class_names(spec: CifarSpec, folder: Path) -> list[str]:
    path = folder / spec.meta_file
    meta = safe_load(path, hint=_fix_hint(spec))
    names = meta.get(spec.names_key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, bytes) for n in names):
        raise UserError(f"{path} has no list of class names under {spec.names_key!r}; {_fix_hint(spec)}")
    return [n.decode("utf-8") for n in names]


def _read_split(spec: CifarSpec, folder: Path, files: tuple[str, ...], classes: list[str]) -> ImageSet:
    """One split as a single tensor: the batches' (n, 3072) rows concatenated, then reshaped without a loop."""
    batches = [_read_batch(spec, folder / name, len(classes)) for name in files]
    data = np.concatenate([rows for rows, _ in batches])  # (N, 3072): R plane, G plane, B plane
    labels = np.concatenate([labels for _, labels in batches])  # (N,)
    images = data.reshape(-1, 3, 32, 32)  # (N, 3, 32, 32)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), classes)


def _read_batch(spec: CifarSpec, path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch file's pixel rows and labels, refusing anything that is not shaped like CIFAR."""
    batch = safe_load(path, hint=_fix_hint(spec))
    if not isinstance(batch, dict) or b"data" not in batch or spec.label_key not in batch:
        keys = f"b'data' and {spec.label_key!r}"
        raise UserError(f"{path} lacks the keys {keys} of a {spec.title} batch; {_fix_hint(spec)}")
    data, labels = batch[b"data"], np.asarray(batch[spec.label_key])
    problem = _batch_problem(data, labels, num_classes)
    if problem:
        raise UserError(f"{path} is not a valid {spec.title} batch: {problem}; {_fix_hint(spec)}")
    return data, labels.astype(np.int64)


def _batch_problem(data: object, labels: np.ndarray, num_classes: int) -> str | None:
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = getattr(data, "shape", type(data).__name__)
        return f"b'data' must be an (n, {PIXELS}) uint8 array, got {shape} {getattr(data, 'dtype', '')}".rstrip()
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        return f"{data.shape[0]} images but labels of shape {labels.shape} ({labels.dtype})"
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        return f"labels outside 0..{num_classes - 1}"
    return None
