"""Mask dataset sources by name (``seg.data``): the shipped folders (pets3, coco200, camvid) and the PASCAL
VOC 2012 layout.

The shipped folders share one layout: ``images/<name>.jpg``, a mask folder of ``<name>.png`` (mode L class
ids), a classes file ``{"id": name}`` and ``labels.json`` ``{name: {labels, size, split}}`` whose ``split``
names the official split. VOC 2012 is not available offline; a user who has it points ``path`` at the
``VOC2012`` folder (``JPEGImages/``, ``SegmentationClass/`` palette PNGs whose indices are the class ids,
``ImageSets/Segmentation/{train,val}.txt``); its ``val`` list is the test split, as in every VOC paper.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from chromaproxy.errors import UserError
from chromaproxy.segment.masks import IGNORE, MaskSet, MaskSplits, on_canvas, read_pair

MAX_SIDE = 160  # canvas side: the shipped photos' longest side; larger photos (VOC's 500 px) are shrunk to it
VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]


@dataclass(frozen=True)
class ShippedLayout:
    """Where one of the shipped folders keeps its masks and classes, and which official splits are used."""

    masks: str
    classes: str
    train: tuple[str, ...]
    test: tuple[str, ...]


LAYOUTS = {
    "pets3": ShippedLayout("masks", "classes.json", ("trainval",), ("test",)),
    "coco200": ShippedLayout("masks_voc20", "classes_voc20.json", ("train2017",), ("val2017",)),  # VOC-20 masks
    "camvid": ShippedLayout("masks", "classes.json", ("train",), ("test",)),  # SegNet's 367 / 233
}


def load_shipped(name: str, folder: Path, max_side: int = MAX_SIDE) -> MaskSplits:
    layout = LAYOUTS[name]
    labels = _read_json(folder / "labels.json")
    classes = _class_names(_read_json(folder / layout.classes), folder / layout.classes)
    splits = {}
    for split, official in (("train", layout.train), ("test", layout.test)):
        names = sorted(n for n, entry in labels.items() if entry.get("split") in official)
        pairs = [read_pair(folder / "images" / f"{n}.jpg", folder / layout.masks / f"{n}.png", max_side) for n in names]
        splits[split] = _checked(on_canvas(pairs, names, max_side), len(classes), folder / layout.masks)
    return MaskSplits(name, splits["train"], splits["test"], classes, str(folder))


def load_voc(folder: Path, max_side: int = MAX_SIDE) -> MaskSplits:
    lists = folder / "ImageSets" / "Segmentation"
    splits = {}
    for split, listed in (("train", "train.txt"), ("test", "val.txt")):
        names = [line.strip() for line in _read_text(lists / listed).splitlines() if line.strip()]
        pairs = [read_pair(folder / "JPEGImages" / f"{n}.jpg", folder / "SegmentationClass" / f"{n}.png", max_side) for n in names]
        splits[split] = _checked(on_canvas(pairs, names, max_side), len(VOC_CLASSES), folder / "SegmentationClass")
    return MaskSplits("voc", splits["train"], splits["test"], list(VOC_CLASSES), str(folder))


def _shipped(name: str) -> Callable[[Path], MaskSplits]:
    return lambda folder: load_shipped(name, folder)


MASK_SOURCES: dict[str, Callable[[Path], MaskSplits]] = {**{name: _shipped(name) for name in LAYOUTS}, "voc": load_voc}


def load_masks(name: str, root: Path, path: str | None = None) -> MaskSplits:
    """The mask dataset ``name`` from ``path`` if given, else ``root/<name>/`` (``root/VOC2012`` for voc)."""
    if name not in MASK_SOURCES:
        ranked = sorted(MASK_SOURCES, key=lambda valid: -difflib.SequenceMatcher(None, name, valid).ratio())
        raise UserError(f"unknown mask dataset seg.data={name}: choose one of {', '.join(ranked)}")
    folder = Path(path).expanduser().resolve() if path else root / ("VOC2012" if name == "voc" else name)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; put the {name} dataset there, or point seg.path=DIR (data info: --path DIR) at it")
    return MASK_SOURCES[name](folder)


def _checked(images: MaskSet, num_classes: int, masks: Path) -> MaskSet:
    """A split must hold photos, and every mask value must be a class id or 255 (a stray id would silently
    count as a wrong class)."""
    if len(images) == 0:
        raise UserError(f"no photos listed for a split of {masks.parent}: check its split lists (labels.json, ImageSets/Segmentation)")
    bad = ((images.masks != IGNORE) & (images.masks >= num_classes)).flatten(1).any(1)  # (N,)
    if bad.any():
        first = int(torch.nonzero(bad)[0])
        raise UserError(f"{masks / images.names[first]}.png holds class ids >= {num_classes} (and {int(bad.sum()) - 1} more masks do)")
    return images


def _class_names(table: dict[str, str], path: Path) -> list[str]:
    ids = sorted(int(k) for k in table if int(k) != IGNORE)
    if ids != list(range(len(ids))):
        raise UserError(f"{path} must number its classes 0..{len(ids) - 1} (plus 255 for ignore)")
    return [table[str(i)] for i in ids]


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise UserError(f"{path} cannot be read ({error.strerror})") from None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error.msg}, line {error.lineno})") from None
