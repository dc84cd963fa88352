"""Dataset sources by name, where the standard datasets live, and the integrity report behind ``data info``.

A source is a loader taking ``SourceOptions`` plus, for standard datasets, what an intact copy looks like
(``Expected``). Integrity is judged from structure and statistics (split sizes, image shape, label range,
class balance, per-channel mean, no zero-filled images) rather than md5s, because faithful copies such as
the one the tests use differ from the official files in bytes that do not matter (placeholder file names).
Statistics are computed a bounded chunk at a time, so a memory-mapped split (STL-10's 2.8 GB of unlabeled
images) is streamed through, never copied into memory whole.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from chromaproxy.data.cifar import CIFAR10, CIFAR100, CIFAR100_20, CifarSpec, load_cifar
from chromaproxy.data.folder import load_folder
from chromaproxy.data.stl10 import load_stl10
from chromaproxy.data.svhn import load_svhn
from chromaproxy.data.types import UNLABELED, DatasetSplits, ImageSet
from chromaproxy.errors import UserError

DEFAULT_ROOT = "~/.cache/chromaproxy"
Check = tuple[str, bool, str]  # (check name, passed, detail)
CHUNK_BYTES = 64 << 20  # bytes of pixels per step of a statistic: bounds what checking a mapped split allocates


@dataclass(frozen=True)
class SourceOptions:
    """Everything a loader may need; each source reads only its own fields."""

    root: Path
    path: str | None = None
    image_size: int = 32
    skip_bad: bool = False
    download: bool = True
    progress: bool = True


@dataclass(frozen=True)
class Expected:
    """What a complete, intact copy of a standard dataset looks like."""

    sizes: dict[str, int]  # images per split ("train", "test" and, where the dataset has one, "unlabeled")
    num_classes: int
    image_shape: tuple[int, int, int] = (3, 32, 32)
    train_mean_rgb: tuple[float, float, float] | None = None  # per-channel mean of the train split, 0..255
    mean_tolerance: float = 3.0
    balanced: bool = True  # every class has exactly size / num_classes images in every labeled split


Normalisation = tuple[tuple[float, float, float], tuple[float, float, float]]  # per-channel (mean, std) in [0, 1]
IMAGENET_NORMALISATION: Normalisation = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR10_NORMALISATION: Normalisation = (  # RotNet's CIFAR-10 statistics
    (125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)
)
CIFAR100_NORMALISATION: Normalisation = ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255))


@dataclass(frozen=True)
class Source:
    """A registry entry: how to load a dataset, the (mean, std) its ``model.input=rgb`` is normalised with
    (its train split's; image folders take ImageNet's), and, for a standard one, what an intact copy looks like."""

    load: Callable[[SourceOptions], DatasetSplits]
    expected: Expected | None = None
    normalisation: Normalisation = IMAGENET_NORMALISATION


def _cifar(spec: CifarSpec) -> Callable[[SourceOptions], DatasetSplits]:
    def load(options: SourceOptions) -> DatasetSplits:
        return load_cifar(spec, options.root, folder=_own_folder(options), download=options.download,
                          progress=options.progress)

    return load


def _stl10(options: SourceOptions) -> DatasetSplits:
    return load_stl10(options.root, folder=_own_folder(options), download=options.download, progress=options.progress)


def _svhn(options: SourceOptions) -> DatasetSplits:
    return load_svhn(options.root, folder=_own_folder(options), download=options.download, progress=options.progress)


def _own_folder(options: SourceOptions) -> Path | None:
    """``data.path`` for a standard dataset: the folder holding its files under any name (a copy kept
    outside ``data.root``, such as ../shared/data/cifar100_subset), instead of ``<root>/<name>/``."""
    return Path(options.path).expanduser().resolve() if options.path else None


def _folder(options: SourceOptions) -> DatasetSplits:
    if options.path is None:
        raise UserError("data.name=folder needs data.path=DIR (the folder of images)")
    return load_folder(
        options.path, image_size=options.image_size, skip_bad=options.skip_bad, progress=options.progress
    )


def _masks(name: str) -> Callable[[SourceOptions], DatasetSplits]:
    def load(options: SourceOptions) -> DatasetSplits:
        # imported here: segment/ reads data.folder, so a module-level import would make a package cycle
        from chromaproxy.segment.images import mask_image_splits

        return mask_image_splits(name, options.root, options.path, options.image_size)

    return load


CIFAR10_EXPECTED = Expected({"train": 50000, "test": 10000}, num_classes=10, train_mean_rgb=(125.3, 123.0, 113.9))
CIFAR100_EXPECTED = Expected({"train": 50000, "test": 10000}, num_classes=100, train_mean_rgb=(129.3, 124.1, 112.4))
STL10_EXPECTED = Expected(
    {"train": 5000, "test": 8000, "unlabeled": 100000},
    num_classes=10,
    image_shape=(3, 96, 96),
    train_mean_rgb=(113.9, 112.2, 103.7),
)
SVHN_EXPECTED = Expected(
    {"train": 73257, "test": 26032}, num_classes=10, train_mean_rgb=(111.6, 113.2, 120.6), balanced=False
)

SOURCES: dict[str, Source] = {
    "cifar10": Source(_cifar(CIFAR10), CIFAR10_EXPECTED, CIFAR10_NORMALISATION),
    "cifar100": Source(_cifar(CIFAR100), CIFAR100_EXPECTED, CIFAR100_NORMALISATION),
    "cifar100-20": Source(_cifar(CIFAR100_20), replace(CIFAR100_EXPECTED, num_classes=20), CIFAR100_NORMALISATION),
    "stl10": Source(_stl10, STL10_EXPECTED, ((113.9 / 255, 112.2 / 255, 103.7 / 255), (66.4 / 255, 65.4 / 255, 69.2 / 255))),
    "svhn": Source(_svhn, SVHN_EXPECTED, ((111.6 / 255, 113.2 / 255, 120.6 / 255), (50.5 / 255, 51.3 / 255, 50.2 / 255))),
    "folder": Source(_folder),
    **{name: Source(_masks(name)) for name in ("pets3", "coco200", "camvid", "voc")},  # photos of a mask dataset (segment/images.py)
}


def resolve_root(root: str | None) -> Path:
    """``data.root``, else ``$CHROMAPROXY_DATA``, else ``~/.cache/chromaproxy``, as an absolute path
    (``~`` expanded): a relative one would change meaning with the working directory, and links made to
    it elsewhere would dangle."""
    return Path(root or os.environ.get("CHROMAPROXY_DATA") or DEFAULT_ROOT).expanduser().resolve()


def load_source(
    name: str,
    *,
    root: str | None = None,
    path: str | None = None,
    image_size: int = 32,
    skip_bad: bool = False,
    download: bool = True,
    progress: bool = True,
) -> DatasetSplits:
    """Load the dataset ``name`` (a key of ``SOURCES``); folder images come out at ``image_size``."""
    source = SOURCES.get(name)
    if source is None:
        ranked = sorted(SOURCES, key=lambda valid: -difflib.SequenceMatcher(None, name, valid).ratio())
        raise UserError(f"unknown dataset data.name={name}: choose one of {', '.join(ranked)}")
    options = SourceOptions(resolve_root(root), path, image_size, skip_bad, download, progress)
    return source.load(options)


@dataclass
class DatasetReport:
    """What ``chromaproxy data info`` prints: location, sizes, per-class counts and integrity checks."""

    name: str
    location: str
    splits: dict[str, int]
    class_names: list[str]
    per_class: dict[str, list[int]]  # split -> images per class (empty for an unlabeled split)
    checks: list[Check]
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (folder, data.skip_bad)

    @property
    def verdict(self) -> str:
        """``ok`` (noting skipped files) or ``FAILED: `` followed by every failed check and its detail."""
        failed = [f"{check}: {detail}" for check, passed, detail in self.checks if not passed]
        if failed:
            return "FAILED: " + "; ".join(failed)
        return f"ok ({len(self.skipped)} unreadable files skipped)" if self.skipped else "ok"


def inspect(splits: DatasetSplits, expected: Expected | None = None) -> DatasetReport:
    """Check ``splits`` against the structure every dataset must have and, for a standard dataset, against
    ``expected`` (by default the ``Expected`` registered for ``splits.name``)."""
    source = SOURCES.get(splits.name)
    expected = expected or (source.expected if source else None)
    sets = _present(splits)
    skipped = list(splits.skipped)
    checks = _structure_checks(sets) + (_expected_checks(sets, expected) if expected else [])
    if splits.name == "folder" or skipped:
        checks.append(_skipped_check(skipped))
    return DatasetReport(
        name=splits.name,
        location=splits.location,
        splits={split: len(images) for split, images in sets.items()},
        class_names=list(splits.train.classes),
        per_class={split: class_counts(images) for split, images in sets.items()},
        checks=checks,
        skipped=skipped,
    )


def _present(splits: DatasetSplits) -> dict[str, ImageSet]:
    """The splits a source returned, in report order: train, test, unlabeled."""
    optional = {"test": splits.test, "unlabeled": splits.unlabeled}
    return {"train": splits.train} | {split: images for split, images in optional.items() if images is not None}


def class_counts(images: ImageSet) -> list[int]:
    """Images per class in ``images.classes`` order; empty when the split is unlabeled."""
    if not images.classes or not images.labeled:
        return []
    labels = images.labels[(images.labels >= 0) & (images.labels < len(images.classes))]
    return torch.bincount(labels, minlength=len(images.classes)).tolist()


def _structure_checks(sets: dict[str, ImageSet]) -> list[Check]:
    """What any dataset must satisfy: no empty split, labels in range, every class present in train."""
    sizes = ", ".join(f"{split} {len(images)}" for split, images in sets.items())
    checks = [("images", all(len(images) > 0 for images in sets.values()), sizes)]
    bad_labels = {split: _labels_out_of_range(images) for split, images in sets.items()}
    detail = ", ".join(f"{split} {n}" for split, n in bad_labels.items() if n) or "all in range"
    checks.append(("labels", not any(bad_labels.values()), detail))
    checks.append(_classes_check(sets["train"]))
    return checks


def _labels_out_of_range(images: ImageSet) -> int:
    labels = images.labels
    return int(((labels != UNLABELED) & ((labels < 0) | (labels >= len(images.classes)))).sum())


def _classes_check(train: ImageSet) -> Check:
    if not train.labeled:
        return ("classes", True, "none: unlabeled images (proxy tasks only)")
    empty = [name for name, n in zip(train.classes, class_counts(train)) if n == 0]
    if empty:
        detail = f"{len(empty)} of {len(train.classes)} classes have no training image: {', '.join(empty)}"
        return ("classes", False, detail)
    return ("classes", True, f"{len(train.classes)} classes, each with training images")


def _expected_checks(sets: dict[str, ImageSet], expected: Expected) -> list[Check]:
    """A standard dataset's sizes, shape, class count, balance, mean colour and absence of blank images."""
    checks = [_sizes_check(sets, expected), _shape_check(sets, expected), _class_count_check(sets["train"], expected)]
    if expected.balanced:
        checks.append(_balance_check(sets, expected))
    if expected.train_mean_rgb is not None:
        checks.append(_mean_check(sets["train"], expected))
    checks.append(_blank_check(sets))
    return checks


def _sizes_check(sets: dict[str, ImageSet], expected: Expected) -> Check:
    found = {split: len(sets[split]) if split in sets else 0 for split in expected.sizes}
    detail = ", ".join(f"{split} {found[split]} (expected {n})" for split, n in expected.sizes.items())
    return ("split sizes", found == expected.sizes, detail)


def _shape_check(sets: dict[str, ImageSet], expected: Expected) -> Check:
    shapes = {split: tuple(images.images.shape[1:]) for split, images in sets.items()}
    detail = ", ".join(f"{split} {'x'.join(map(str, shape))}" for split, shape in shapes.items())
    return ("image shape", all(shape == expected.image_shape for shape in shapes.values()), detail)


def _class_count_check(train: ImageSet, expected: Expected) -> Check:
    detail = f"{len(train.classes)} (expected {expected.num_classes})"
    return ("class count", len(train.classes) == expected.num_classes, detail)


def _balance_check(sets: dict[str, ImageSet], expected: Expected) -> Check:
    """Exactly size / num_classes images of every class in every labeled split (CIFAR and STL-10 are built that
    way); an unlabeled split has no classes to balance."""
    labeled = {split: images for split, images in sets.items() if images.labeled}
    want = {split: expected.sizes.get(split, 0) // expected.num_classes for split in labeled}
    ranges = {split: _min_max(class_counts(images)) for split, images in labeled.items()}
    ok = all(ranges[split] == (want[split], want[split]) for split in labeled)
    detail = ", ".join(f"{split} {lo}..{hi} per class (expected {want[split]})" for split, (lo, hi) in ranges.items())
    return ("class balance", ok, detail)


def _min_max(counts: list[int]) -> tuple[int, int]:
    return (min(counts), max(counts)) if counts else (0, 0)


def chunks(images: ImageSet) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``images.images`` of at most ``CHUNK_BYTES`` (at least one image each).

    Slicing a memory-mapped split is free, so a statistic computed chunk by chunk reads the file once and
    never holds more than one chunk of it.
    """
    per_image = math.prod(images.images.shape[1:])
    step = max(1, CHUNK_BYTES // max(1, per_image))
    for start in range(0, len(images), step):
        yield images.images[start : start + step]  # (n, 3, H, W)


def channel_mean(images: ImageSet) -> np.ndarray:
    """Per-channel mean in 0..255; numpy sums uint8 into int64, one chunk at a time, without a float copy."""
    total = np.zeros(3, dtype=np.int64)
    for chunk in chunks(images):
        total += chunk.numpy().sum(axis=(0, 2, 3), dtype=np.int64)  # (3,)
    return total / max(1, images.images[:, 0].numel())


def _mean_check(train: ImageSet, expected: Expected) -> Check:
    mean = channel_mean(train)
    ok = bool(np.all(np.abs(mean - np.array(expected.train_mean_rgb)) <= expected.mean_tolerance))
    shown = ", ".join(f"{m:.1f}" for m in mean)
    known = ", ".join(f"{m:.1f}" for m in expected.train_mean_rgb)
    return ("pixel mean", ok, f"train RGB ({shown}), known ({known}) +/- {expected.mean_tolerance:g}")


def _blank_check(sets: dict[str, ImageSet]) -> Check:
    """Zero-filled images are the usual trace of a truncated or badly converted file; every image is looked at,
    streamed in chunks so that a memory-mapped split is never loaded whole."""
    blank = {split: blank_count(images) for split, images in sets.items()}
    detail = ", ".join(f"{split} {n}" for split, n in blank.items())
    mib = CHUNK_BYTES >> 20
    return ("no all-zero images", not any(blank.values()), f"{detail} (every image read, streamed {mib} MB at a time)")


def blank_count(images: ImageSet) -> int:
    """How many images are zero everywhere; ``amax`` over a chunk's strided view copies nothing."""
    return sum(int((chunk.amax(dim=(1, 2, 3)) == 0).sum()) for chunk in chunks(images))


def _skipped_check(skipped: list[str]) -> Check:
    """Skipping is what the user asked for (data.skip_bad), so it passes, but every count is shown."""
    if not skipped:
        return ("unreadable files", True, "none")
    shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
    return ("unreadable files", True, f"{len(skipped)} skipped (data.skip_bad=true): {shown}")
