"""The ``folder`` source: a user's image folder, decoded once into one uint8 tensor per split.

Layouts (checked in this order):

* ``DIR/train/`` with ``DIR/test/`` (or ``DIR/val/`` when there is no ``test/``) -> two splits;
* otherwise ``DIR`` itself is the train split and there is no test split.

In the two-split layout anything beside ``train/`` and ``test/`` (or ``val/``) is not read.

Within a split, images at its top level make it unlabeled; images under top-level sub-folders make each
sub-folder a class (any depth below it), labels sorted by folder name and shared by both splits. A split
with both is refused, since guessing would silently drop or mislabel images. Hidden files and folders
(``.DS_Store``, macOS ``._x.jpg`` resource forks) are ignored, as are files without an image extension.

Every image goes through ``to_rgb`` (EXIF orientation, alpha composited on white, 16-bit scaled rather
than clipped) and ``ImageOps.fit`` (shorter side to ``image_size`` with antialiasing, centre square).
Decoding runs on a thread pool: Pillow releases the GIL while decoding and resampling. Files that fail to
decode stop the load, or with ``skip_bad`` are skipped and listed in ``DatasetSplits.skipped``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chromaproxy.data.types import UNLABELED, DatasetSplits, ImageSet
from chromaproxy.errors import UserError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SPLIT_NAMES = {"train": ("train",), "test": ("test", "val")}
PROGRESS_MIN_FILES = 256
WHITE = (255, 255, 255, 255)
SKIP_HINT = "or set data.skip_bad=true to skip unreadable files"
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass
class _SplitFiles:
    """The image files of one split with their class folder (None for a flat, unlabeled split)."""

    files: list[Path]
    class_of: list[str | None]


def load_folder(
    path: str | Path, *, image_size: int = 32, skip_bad: bool = False, progress: bool = True
) -> DatasetSplits:
    """Decode every image under ``path`` into (N, 3, image_size, image_size) uint8 splits."""
    if image_size < 1:
        raise UserError(f"data.image_size={image_size} must be a positive number of pixels, e.g. data.image_size=64")
    root = _existing_dir(path)
    listed = {split: _list_split(folder) for split, folder in _split_dirs(root).items()}
    classes = sorted({c for split in listed.values() for c in split.class_of if c is not None})
    decoded = {split: _decode_split(files, classes, image_size, skip_bad, progress) for split, files in listed.items()}
    skipped = [bad for _, bad_files in decoded.values() for bad in bad_files]
    test = decoded["test"][0] if "test" in decoded else None
    return DatasetSplits(name="folder", train=decoded["train"][0], test=test, location=str(root), skipped=skipped)


def _existing_dir(path: str | Path) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "does not exist"
        raise UserError(f"data.path {root} {problem}: point data.path at a folder of images")
    return root


def _split_dirs(root: Path) -> dict[str, Path]:
    """``{"train": ..., "test": ...}`` when ``root`` has train/ and test/ (or val/), else ``{"train": root}``."""
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    train = next((subdirs[n] for n in SPLIT_NAMES["train"] if n in subdirs), None)
    test = next((subdirs[n] for n in SPLIT_NAMES["test"] if n in subdirs), None)
    return {"train": train, "test": test} if train and test else {"train": root}


def _is_visible_image(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def images_under(folder: Path) -> list[Path]:
    """Every image file below ``folder`` at any depth, skipping hidden folders, in a stable order."""
    found = []
    for current, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(current, n) for n in names if _is_visible_image(Path(n)))
    return sorted(found)


def _list_split(folder: Path) -> _SplitFiles:
    """The split's files, labeled by top-level sub-folder, or unlabeled when they all sit at the top."""
    top = sorted(p for p in folder.iterdir() if p.is_file() and _is_visible_image(p))
    subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    nested = {d.name: files for d in subdirs if (files := images_under(d))}
    if top and nested:
        raise UserError(
            f"{folder} has images both at its top level (e.g. {top[0].name}) and in sub-folders "
            f"(e.g. {next(iter(nested))}/): put every image in a class sub-folder for labeled data, "
            "or all at the top level for unlabeled data"
        )
    if not top and not nested:
        kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise UserError(f"no images ({kinds}) found in {folder}: point data.path at a folder of images")
    if top:
        return _SplitFiles(top, [None] * len(top))
    return _SplitFiles([f for files in nested.values() for f in files], [c for c, fs in nested.items() for _ in fs])


def _decode_split(
    listed: _SplitFiles, classes: list[str], size: int, skip_bad: bool, progress: bool
) -> tuple[ImageSet, list[str]]:
    """Decode one split in parallel; also returns the paths of the files skipped as unreadable."""
    index = {name: i for i, name in enumerate(classes)}
    arrays, labels, skipped = [], [], []
    for path, cls, array in zip(listed.files, listed.class_of, _decode_all(listed.files, size, skip_bad, progress)):
        if array is None:
            skipped.append(str(path))
            continue
        arrays.append(array)
        labels.append(UNLABELED if cls is None else index[cls])
    if not arrays:
        raise UserError(f"none of the {len(skipped)} image files could be read (first: {skipped[0]}): check the folder")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, 3, size, size)
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), classes), skipped


def _decode_all(files: list[Path], size: int, skip_bad: bool, progress: bool):
    """Yield each file's (size, size, 3) array in order, or None for a skipped file; fail fast otherwise."""
    pool = ThreadPoolExecutor(max_workers=min(16, 2 * (os.cpu_count() or 1)))
    try:
        with _decode_bar(progress and len(files) >= PROGRESS_MIN_FILES) as bar:
            task = bar.add_task("decoding images", total=len(files))
            for path, (array, error) in zip(files, pool.map(partial(_try_decode, size=size), files)):
                if error is not None and not skip_bad:
                    raise UserError(f"cannot read image {path} ({error}): fix or remove it, {SKIP_HINT}")
                bar.advance(task)
                yield array
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _decode_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), disable=not enabled,
    )


def _try_decode(path: Path, size: int) -> tuple[np.ndarray | None, str | None]:
    """``(array, None)`` or ``(None, reason)``: runs on a worker thread, so it reports instead of raising."""
    try:
        return decode_image(path, size), None
    except _DECODE_ERRORS as err:
        return None, f"{type(err).__name__}: {err}"


def decode_image(path: Path, size: int) -> np.ndarray:
    """One file as a (size, size, 3) uint8 RGB array: upright, shorter side resized, centre square."""
    with Image.open(path) as image:
        image.draft(None, (size, size))  # JPEG: let the decoder downscale by up to 8x, never below size
        rgb = to_rgb(ImageOps.exif_transpose(image))
    square = ImageOps.fit(rgb, (size, size), method=Image.Resampling.BICUBIC)
    return np.asarray(square, dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: gray, palette, CMYK, alpha on white, 16/32-bit integer scaled."""
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        image = _sixteen_bit_to_l(image)
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    return image.convert("RGB")


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """16-bit gray (mode I;16*, or I as Pillow opens some 16-bit files) to 8 bit by scaling 0..65535 onto 0..255.

    ``convert("L")`` would clip everything above 255 to white instead.
    """
    values = np.asarray(image).astype(np.float32)
    scaled = np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
    return Image.fromarray(scaled)  # mode L
