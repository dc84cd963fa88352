"""Mask datasets: the VOC 2012 layout on a fixture written here, the shipped folders, joint augmentation,
``data info``, and mIoU against a naive per-pixel count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from chromaproxy.cli import app
from chromaproxy.errors import UserError
from chromaproxy.segment.augment import apply_grid, crop_grid, joint_augment
from chromaproxy.segment.masks import IGNORE, image_labels
from chromaproxy.segment.metrics import class_iou, confusion_matrix, mean_iou, pixel_accuracy
from chromaproxy.segment.sources import load_masks, load_voc
from conftest import data_root

PALETTE = [v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)]


def write_voc(folder, sizes=((40, 30), (24, 36), (200, 100)), classes=(15, 12, 8)):
    """VOC 2012 layout: JPEGs, palette PNG masks (class in the centre, background around, a 255 border)."""
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (folder / sub).mkdir(parents=True)
    names = [f"2007_{i:06d}" for i in range(len(sizes))]
    for name, (h, w), k in zip(names, sizes, classes):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / "JPEGImages" / f"{name}.jpg")
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = k
        mask[0, :] = IGNORE
        png = Image.fromarray(mask, mode="P")
        png.putpalette(PALETTE)
        png.save(folder / "SegmentationClass" / f"{name}.png")
    (folder / "ImageSets/Segmentation/train.txt").write_text("\n".join(names[:2]) + "\n")
    (folder / "ImageSets/Segmentation/val.txt").write_text(names[2] + "\n")
    return names


def test_voc_layout_reads_palette_masks_as_class_ids_on_a_padded_canvas(tmp_path):
    write_voc(tmp_path)
    splits = load_voc(tmp_path)
    assert len(splits.classes) == 21 and splits.classes[15] == "person"
    assert splits.train.sizes.tolist() == [[40, 30], [24, 36]] and splits.test.sizes.tolist() == [[160, 80]]
    first = splits.train.masks[0]
    assert first[20, 15] == 15 and first[5, 2] == 0 and (first[0, :30] == IGNORE).all()
    assert (first[40:, :] == IGNORE).all() and (first[:, 30:] == IGNORE).all()  # canvas padding is ignored
    assert set(splits.test.masks.unique().tolist()) == {0, 8, IGNORE}  # shrunk 200 -> 160 by nearest: no blends
    labels = image_labels(splits.train.masks, 21)
    assert labels.nonzero().tolist() == [[0, 0], [0, 15], [1, 0], [1, 12]]


def test_bad_mask_files_are_one_line_errors(tmp_path):
    names = write_voc(tmp_path)
    (tmp_path / "SegmentationClass" / f"{names[0]}.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot be read as an image"):
        load_voc(tmp_path)
    mask = np.full((40, 30), 30, np.uint8)  # class 30 does not exist in VOC
    Image.fromarray(mask, mode="L").save(tmp_path / "SegmentationClass" / f"{names[0]}.png")
    with pytest.raises(UserError, match="class ids >= 21"):
        load_voc(tmp_path)
    write_voc(tmp_path / "empty")
    (tmp_path / "empty/ImageSets/Segmentation/val.txt").write_text("\n")
    with pytest.raises(UserError, match="no photos listed"):
        load_voc(tmp_path / "empty")
    with pytest.raises(UserError, match="is not a folder"):
        load_masks("voc", tmp_path / "missing")
    with pytest.raises(UserError, match="choose one of"):
        load_masks("pet3", tmp_path)


def test_shipped_pets3_has_the_official_split_and_one_breed_per_image():
    if not (data_root() / "pets3" / "labels.json").is_file():
        pytest.skip("pets3 not available")
    splits = load_masks("pets3", data_root())
    assert (len(splits.train), len(splits.test), len(splits.classes)) == (300, 298, 4)
    labels = image_labels(splits.train.masks, 4)
    assert labels[:, 0].all() and (labels[:, 1:].sum(1) == 1).all()


@pytest.mark.parametrize(("name", "sizes", "classes"), [("coco200", (100, 100), 21), ("camvid", (367, 233), 11)])
def test_shipped_coco200_and_camvid_load_their_official_splits(name, sizes, classes):
    if not (data_root() / name / "labels.json").is_file():
        pytest.skip(f"{name} not available")
    splits = load_masks(name, data_root())
    assert (len(splits.train), len(splits.test), len(splits.classes)) == (*sizes, classes)
    assert int(splits.train.sizes.max()) == 160 and splits.train.masks.dtype == torch.uint8


def _blocks(batch=4, side=32):
    """Photos whose red channel is their mask / 255: 8x8 blocks of class ids, so image and mask must agree."""
    generator = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 5, (batch, side // 8, side // 8), generator=generator).repeat_interleave(8, 1).repeat_interleave(8, 2)
    rgb = (masks.float() / 255).unsqueeze(1).repeat(1, 3, 1, 1)  # (B, 3, S, S)
    return rgb, masks.to(torch.uint8)


def test_joint_augmentation_moves_image_and_mask_together():
    rgb, masks = _blocks()
    sizes = torch.tensor([[32, 32], [32, 20], [16, 32], [32, 32]])
    image, mask = joint_augment(rgb, masks, sizes, crop=24, scales=(1.5, 2.5), generator=torch.Generator().manual_seed(1))
    assert image.shape == (4, 3, 24, 24) and mask.shape == (4, 24, 24) and mask.dtype == torch.long
    inside = mask != IGNORE
    agree = (torch.round(image[:, 0] * 255).long() == mask) & inside
    assert agree.sum() > 0.8 * inside.sum()  # all but the bilinear seams between blocks


def test_a_unit_scale_full_crop_is_the_identity_or_its_mirror_and_outside_the_photo_is_ignored():
    rgb, masks = _blocks(batch=8)
    grid = crop_grid(torch.tensor([[32, 32]] * 8), 32, 32, (1.0, 1.0), torch.Generator().manual_seed(0))
    image, mask = apply_grid(rgb, masks, grid)
    for i in range(8):
        same = torch.equal(mask[i], masks[i].long()) and torch.allclose(image[i], rgb[i], atol=1e-6)
        mirrored = torch.equal(mask[i], masks[i].long().flip(-1)) and torch.allclose(image[i], rgb[i].flip(-1), atol=1e-6)
        assert same or mirrored
    small = crop_grid(torch.tensor([[10, 10]]), 32, 24, (1.0, 1.0), torch.Generator().manual_seed(0))
    canvas = torch.full((1, 32, 32), IGNORE, dtype=torch.uint8)
    canvas[:, :10, :10] = 0  # a 10 x 10 photo at the canvas' top-left
    _, mask = apply_grid(rgb[:1], canvas, small)
    assert (mask == 0).sum() == 100 and (mask == IGNORE).sum() == 24 * 24 - 100


def _naive_iou(predicted, truth, num_classes):
    tp, fp, fn = [0] * num_classes, [0] * num_classes, [0] * num_classes
    for p, t in zip(predicted.flatten().tolist(), truth.flatten().tolist()):
        if t == IGNORE:
            continue
        if p == t:
            tp[t] += 1
        else:
            fp[p] += 1
            fn[t] += 1
    return [tp[c] / (tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else math.nan for c in range(num_classes)]


def test_miou_matches_a_naive_per_pixel_count_with_ignore_respected():
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 4, (3, 20, 20), generator=generator)
    truth[truth == 3] = IGNORE  # class 3 never in the truth ...
    truth[0, :5] = IGNORE
    predicted = torch.randint(0, 3, (3, 20, 20), generator=generator)  # ... nor predicted: no IoU
    predicted[0, :5] = 2  # predictions on ignored pixels count nowhere
    confusion = confusion_matrix(predicted, truth, 5)
    naive = _naive_iou(predicted, truth, 5)
    iou = class_iou(confusion)
    assert all((math.isnan(a) and math.isnan(b)) or a == pytest.approx(b) for a, b in zip(iou.tolist(), naive))
    assert mean_iou(confusion) == pytest.approx(np.nanmean(naive))
    keep = truth != IGNORE
    assert pixel_accuracy(confusion) == pytest.approx(float((predicted[keep] == truth[keep]).float().mean()))
    assert mean_iou(confusion_matrix(truth.clamp(max=2), truth.clamp(max=2), 5)) == 1.0


def test_data_info_shows_per_class_images_and_pixels(tmp_path):
    write_voc(tmp_path)
    result = CliRunner().invoke(app, ["data", "info", "voc", "--path", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the console wraps long lines
    assert "person" in text and "2 train / 1 test images" in text and "3.2% ignored" in text
