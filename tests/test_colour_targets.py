"""Colorization targets: no sampled point on crop padding, gray images weigh nothing, chroma weighting is opt-in."""

import torch

from chromaproxy.data.augment import AugmentSpec, augment, crop_and_flip
from chromaproxy.models import build_backbone
from chromaproxy.tasks.base import TaskContext
from chromaproxy.tasks.colorize import ColorizationOptions, ColorizationTask


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
    return ColorizationTask(ColorizationOptions(**{"loss": "regression", "points": 16, **options}), TaskContext(backbone, 0))


def test_gray_images_get_zero_colour_weight():
    rgb = torch.rand(4, 3, 16, 16)
    rgb[1] = rgb[1].mean(0, keepdim=True)  # exactly gray
    _, targets = _task().make_batch(rgb, torch.zeros(4), torch.Generator().manual_seed(0))
    assert targets["colour_weight"][1].eq(0).all() and targets["colour_weight"][[0, 2, 3]].eq(1).all()
    _, kept = _task(skip_gray=False).make_batch(rgb, torch.zeros(4), torch.Generator().manual_seed(0))
    assert kept["colour_weight"].eq(1).all()


def test_chroma_lightness_weight_is_off_by_default():
    task = _task(loss="histogram")
    L01 = torch.tensor([[0.0, 0.1, 0.5, 0.95]])
    assert task.target.second_weight(L01).eq(1).all()
    weighted = _task(loss="histogram", chroma_lightness_weight=True).target.second_weight(L01)
    assert torch.allclose(weighted, torch.tensor([[0.0, 0.3, 1.0, 0.15]]))


def test_an_a_b_histogram_decodes_a_without_wrapping_it_around_like_hue():
    from chromaproxy.tasks.colour_targets import ColourHistograms

    target = ColourHistograms(bins=8, lab=True, lightness_weight=False)
    logits = torch.full((1, 16, 1, 1), -20.0)
    logits[0, [0, 7]] = 0.0  # a: half its mass in the lowest bin, half in the highest
    logits[0, 8 + 3] = 0.0  # b: all in bin 3
    ab = target.decode(logits, torch.full((1, 1, 1, 1), 50.0), "mean", 1.0)
    assert ab[0, 0].abs().max() < 1e-3, "the mean of the extremes of a is a = 0, not an extreme"
    assert torch.allclose(ab[0, 1], torch.tensor(3.5 / 8 * 220 - 110), atol=1e-3)
