"""The folder source on images this test writes with Pillow: every mode, EXIF, layouts, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chromaproxy.data import folder as folder_module
from chromaproxy.data.folder import load_folder
from chromaproxy.data.sources import inspect, load_source
from chromaproxy.data.types import DatasetSplits
from chromaproxy.errors import UserError

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _halves(mode: str, size: tuple[int, int], left, right) -> Image.Image:
    """An image of ``size`` (w, h) whose left half is ``left`` and right half ``right``."""
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def _save(path: Path, image: Image.Image, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def _pixels(splits: DatasetSplits, index: int) -> np.ndarray:
    return splits.train.images[index].permute(1, 2, 0).numpy().astype(int)  # (H, W, 3)


def _palette_with_transparency(path: Path) -> Path:
    image = _halves("P", (30, 20), 0, 1)
    image.putpalette([255, 0, 0, 0, 255, 0])
    return _save(path, image, transparency=1)


def _sixteen_bit(path: Path) -> Path:
    values = np.full((20, 40), 65535, dtype=np.uint16)
    values[:, 20:] = 32768
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    return _save(path, image)


@pytest.fixture
def every_mode(tmp_path: Path) -> DatasetSplits:
    """One flat folder with one file per Pillow mode, named so sorted order is the index below."""
    _save(tmp_path / "0_rgb.jpg", Image.new("RGB", (48, 24), RED), quality=95)
    _save(tmp_path / "1_gray.png", Image.new("L", (24, 48), 100))
    _palette_with_transparency(tmp_path / "2_palette.png")
    _save(tmp_path / "3_rgba.png", _halves("RGBA", (40, 20), (0, 0, 255, 255), (0, 0, 255, 0)))
    _sixteen_bit(tmp_path / "4_sixteen.png")
    _save(tmp_path / "5_cmyk.JPG", Image.new("CMYK", (20, 30), (0, 255, 255, 0)), quality=95)
    _save(tmp_path / "6_la.png", Image.new("LA", (20, 20), (50, 0)))
    _save(tmp_path / "7_bmp.bmp", Image.new("RGB", (9, 9), BLUE))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"ignored, never decoded")
    return load_folder(tmp_path, image_size=8, progress=False)


def test_every_mode_becomes_square_rgb_at_image_size(every_mode: DatasetSplits) -> None:
    train = every_mode.train
    assert train.images.shape == (8, 3, 8, 8) and train.images.dtype == torch.uint8
    assert train.labels.tolist() == [-1] * 8 and train.classes == [] and every_mode.test is None
    assert np.abs(_pixels(every_mode, 0) - RED).max() <= 3
    assert (_pixels(every_mode, 1) == 100).all()
    assert (_pixels(every_mode, 7) == BLUE).all()


def test_transparency_is_composited_on_white(every_mode: DatasetSplits) -> None:
    palette, rgba, la = _pixels(every_mode, 2), _pixels(every_mode, 3), _pixels(every_mode, 6)
    assert tuple(palette[0, 0]) == RED and tuple(palette[-1, -1]) == WHITE
    assert tuple(rgba[0, 0]) == BLUE and tuple(rgba[-1, -1]) == WHITE
    assert (la == 255).all()


def test_sixteen_bit_is_scaled_not_clipped(every_mode: DatasetSplits) -> None:
    sixteen = _pixels(every_mode, 4)
    assert (sixteen[:, 0] == 255).all()
    assert (np.abs(sixteen[:, -1] - 128) <= 1).all()


def test_cmyk_converts_to_rgb(every_mode: DatasetSplits) -> None:
    red, green, blue = _pixels(every_mode, 5).mean(axis=(0, 1))
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """Orientation 6 means "rotate 90 degrees clockwise to view": the red left half ends on top."""
    photo = _halves("RGB", (64, 32), RED, BLUE)
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(tmp_path / "rotated" / "a.jpg", photo, exif=exif, quality=95)
    _save(tmp_path / "upright" / "a.jpg", photo, quality=95)
    rotated = _pixels(load_folder(tmp_path / "rotated", image_size=16, progress=False), 0)
    upright = _pixels(load_folder(tmp_path / "upright", image_size=16, progress=False), 0)
    assert rotated[0].mean(axis=0)[0] > 200 and rotated[-1].mean(axis=0)[2] > 200  # red top, blue bottom
    assert upright[:, 0].mean(axis=0)[0] > 200 and upright[:, -1].mean(axis=0)[2] > 200  # red left, blue right


def test_class_subfolders_become_sorted_labels(tmp_path: Path) -> None:
    _save(tmp_path / "dog" / "b.png", Image.new("RGB", (10, 10), BLUE))
    _save(tmp_path / "dog" / "deeper" / "c.png", Image.new("RGB", (10, 10), BLUE))
    _save(tmp_path / "cat" / "a.png", Image.new("RGB", (10, 10), RED))
    (tmp_path / "empty").mkdir()
    splits = load_folder(tmp_path, image_size=4, progress=False)
    assert splits.train.classes == ["cat", "dog"]
    assert splits.train.labels.tolist() == [0, 1, 1]
    report = inspect(splits)
    assert report.per_class == {"train": [1, 2]} and report.verdict == "ok"


def test_images_both_at_top_and_in_subfolders_are_refused(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", Image.new("RGB", (4, 4)))
    _save(tmp_path / "cat" / "b.png", Image.new("RGB", (4, 4)))
    with pytest.raises(UserError, match="both at its top level .* and in sub-folders"):
        load_folder(tmp_path, progress=False)


def test_train_and_val_folders_become_splits_with_shared_classes(tmp_path: Path) -> None:
    _save(tmp_path / "train" / "cat" / "a.png", Image.new("RGB", (4, 4)))
    _save(tmp_path / "train" / "dog" / "b.png", Image.new("RGB", (4, 4)))
    _save(tmp_path / "val" / "dog" / "c.png", Image.new("RGB", (4, 4)))
    splits = load_folder(tmp_path, image_size=4, progress=False)
    assert splits.train.labels.tolist() == [0, 1]
    assert splits.test is not None and splits.test.labels.tolist() == [1]
    assert splits.test.classes == ["cat", "dog"]


def test_flat_train_and_test_folders_are_unlabeled(tmp_path: Path) -> None:
    for name in ("train/a.png", "train/b.png", "test/c.png"):
        _save(tmp_path / name, Image.new("RGB", (6, 4)))
    splits = load_folder(tmp_path, image_size=4, progress=False)
    assert len(splits.train) == 2 and len(splits.test) == 1
    assert not splits.train.labeled and not splits.test.labeled
    assert inspect(splits).splits == {"train": 2, "test": 1}


@pytest.fixture
def with_bad_files(tmp_path: Path) -> Path:
    _save(tmp_path / "good.png", Image.new("RGB", (4, 4)))
    (tmp_path / "garbage.jpg").write_bytes(b"this is not a jpeg")
    whole = _save(tmp_path / "whole.jpg", Image.new("RGB", (64, 64), RED)).read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    return tmp_path


def test_unreadable_file_stops_the_load_with_its_path(with_bad_files: Path) -> None:
    with pytest.raises(UserError, match="garbage.jpg.*or set data.skip_bad=true") as err:
        load_folder(with_bad_files, progress=False)
    assert "\n" not in str(err.value)


def test_truncated_file_is_unreadable_too(with_bad_files: Path) -> None:
    (with_bad_files / "garbage.jpg").unlink()
    with pytest.raises(UserError, match="truncated.jpg"):
        load_folder(with_bad_files, progress=False)


def test_skip_bad_skips_and_counts(with_bad_files: Path) -> None:
    splits = load_source("folder", path=str(with_bad_files), image_size=4, skip_bad=True, progress=False)
    assert isinstance(splits, DatasetSplits) and len(splits.train) == 2
    assert sorted(Path(p).name for p in splits.skipped) == ["garbage.jpg", "truncated.jpg"]
    report = inspect(splits)
    assert report.verdict == "ok (2 unreadable files skipped)"
    assert ("unreadable files", True) in [(name, passed) for name, passed, _ in report.checks]


def test_empty_missing_and_pathless_folders_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="no images .* found in"):
        load_folder(tmp_path, progress=False)
    with pytest.raises(UserError, match="does not exist"):
        load_folder(tmp_path / "missing", progress=False)
    with pytest.raises(UserError, match="data.name=folder needs data.path=DIR"):
        load_source("folder")


def test_progress_bar_path_decodes_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        _save(tmp_path / f"{i}.png", Image.new("RGB", (6, 6), (i * 50, 0, 0)))
    monkeypatch.setattr(folder_module, "PROGRESS_MIN_FILES", 1)
    splits = load_folder(tmp_path, image_size=6, progress=True)
    assert splits.train.images[:, 0, 0, 0].tolist() == [0, 50, 100, 150, 200]
