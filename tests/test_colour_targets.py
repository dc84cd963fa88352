"""Colorization targets: no sampled point on crop padding, gray images weigh nothing, chroma weighting is opt-in."""

import torch

from chromaproxy.data.augment import AugmentSpec, augment, crop_and_flip
from chromaproxy.tasks.colorize import ColorizationOptions, ColorizationTask
from chromaproxy.tasks.base import TaskContext
from chromaproxy.models import build_backbone


def test_reflect_padding_matches_numpy_reflection_and_never_shows_zeros():
    images = torch.randint(1, 256, (6, 3, 8, 8), dtype=torch.uint8)
    offsets = torch.tensor([[0, 0], [6, 6], [0, 6], [6, 0], [3, 2], [1, 5]])
    flips = torch.tensor([False, True, False, True, True, False])
    out = crop_and_flip(images, 3, offsets, flips, reflect=True)
    for i in range(6):
        padded = torch.nn.functional.pad(images[i : i + 1].float(), (3,) * 4, mode="reflect")[0]
        dy, dx = offsets[i].tolist()
        expected = padded[:, dy : dy + 8, dx : dx + 8]
        expected = expected.flip(2) if flips[i] else expected
        assert torch.equal(out[i].float(), expected)
    assert (out > 0).all()


def test_colorization_run_crops_with_reflection_so_no_point_lies_in_padding():
    spec = AugmentSpec(crop_padding=4, padding_mode=ColorizationTask.padding_mode)
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    rgb = augment(images, spec, torch.Generator().manual_seed(0))
    assert (rgb.amax(1) > 0).all()
    zero_padded = augment(images, AugmentSpec(crop_padding=4), torch.Generator().manual_seed(0))
    assert (zero_padded.amax(1) == 0).any()


def _task(**options) -> ColorizationTask:
    backbone = build_backbone("nin", in_channels=1, width=0.25, blocks=3)
    return ColorizationTask(ColorizationOptions(loss="regression", points=16, **options), TaskContext(backbone, 0))


def test_gray_images_get_zero_colour_weight():
    rgb = torch.rand(4, 3, 16, 16)
    rgb[1] = rgb[1].mean(0, keepdim=True)  # exactly gray
    _, targets = _task().make_batch(rgb, torch.zeros(4), torch.Generator().manual_seed(0))
    assert targets["colour_weight"][1].eq(0).all() and targets["colour_weight"][[0, 2, 3]].eq(1).all()
    _, kept = _task(skip_gray=False).make_batch(rgb, torch.zeros(4), torch.Generator().manual_seed(0))
    assert kept["colour_weight"].eq(1).all()


def test_chroma_lightness_weight_is_off_by_default():
    task = _task()
    L01 = torch.tensor([[0.0, 0.1, 0.5, 0.95]])
    assert task._second_weight(L01).eq(1).all()
    weighted = _task(chroma_lightness_weight=True)._second_weight(L01)
    assert torch.allclose(weighted, torch.tensor([[0.0, 0.3, 1.0, 0.15]]))
