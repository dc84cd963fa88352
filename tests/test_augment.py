"""Batched augmentation against naive per-image references, and its determinism."""

from __future__ import annotations

import kornia
import pytest
import torch
import torch.nn.functional as F

from chromaproxy.data.augment import (
    AugmentSpec,
    adjust_hue,
    augment,
    color_jitter,
    crop_and_flip,
    sample_crop_and_flip,
    sample_jitter,
    to_float,
)
from chromaproxy.errors import UserError

NO_GEOMETRY = dict(crop_padding=0, hflip=False)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(batch: int = 16, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=seeded(seed))


def naive_crop_and_flip(x: torch.Tensor, padding: int, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    height, width = x.shape[-2:]
    out = []
    for image, (dy, dx), flip in zip(x, offsets.tolist(), flips.tolist()):
        crop = F.pad(image, (padding,) * 4)[:, dy : dy + height, dx : dx + width]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out)


def test_crop_matches_pad_and_slice():
    x = images()[..., :9]  # (16, 3, 12, 9): rows and columns must not be mixed up
    offsets = torch.randint(0, 9, (16, 2), generator=seeded(1))
    no_flips = torch.zeros(16, dtype=torch.bool)
    assert torch.equal(crop_and_flip(x, 4, offsets, no_flips), naive_crop_and_flip(x, 4, offsets, no_flips))
    centered = torch.full((16, 2), 4)
    assert torch.equal(crop_and_flip(x, 4, centered, no_flips), x)


def test_flip_mirrors_exactly_the_selected_images():
    x = images()
    flips = torch.arange(16) % 3 == 0
    out = crop_and_flip(x, 0, torch.zeros(16, 2, dtype=torch.long), flips)
    assert torch.equal(out[flips], x[flips].flip(-1))
    assert torch.equal(out[~flips], x[~flips])


def test_augment_uses_the_offsets_and_flips_it_samples():
    x, spec = images(), AugmentSpec(crop_padding=3, hflip=True)
    offsets, flips = sample_crop_and_flip(x, spec, seeded(5))
    assert offsets.min() >= 0 and offsets.max() <= 6 and flips.any() and not flips.all()
    expected = to_float(naive_crop_and_flip(x, 3, offsets, flips))
    assert torch.equal(augment(x, spec, seeded(5)), expected)


def test_output_shape_dtype_range_and_device():
    x = images(batch=8, size=10)
    spec = AugmentSpec(color_jitter=(0.4, 0.4, 0.4, 0.1), color_jitter_p=0.8, grayscale_p=0.2)
    out = augment(x, spec, seeded())
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device == x.device
    assert out.min() >= 0 and out.max() <= 1


def test_same_generator_state_same_output_and_global_rng_untouched():
    x = images()
    spec = AugmentSpec(color_jitter=(0.4, 0.4, 0.4, 0.1), grayscale_p=0.2)
    generator = seeded(3)
    state, global_state = generator.get_state(), torch.get_rng_state()
    first = augment(x, spec, generator)
    generator.set_state(state)
    assert torch.equal(augment(x, spec, generator), first)
    assert torch.equal(torch.get_rng_state(), global_state)
    assert not torch.equal(augment(x, spec, seeded(4)), first)


def test_all_off_is_plain_conversion():
    x = images()
    spec = AugmentSpec(**NO_GEOMETRY, color_jitter=(0, 0, 0, 0), grayscale_p=0.0)
    assert torch.equal(augment(x, spec, seeded()), to_float(x))
    assert torch.equal(to_float(x), x.float() / 255)


def test_zero_jitter_is_identity():
    rgb = to_float(images())
    assert torch.equal(color_jitter(rgb, (0.0, 0.0, 0.0, 0.0), 1.0, seeded()), rgb)
    assert torch.equal(augment(images(), AugmentSpec(**NO_GEOMETRY, color_jitter_p=1.0), seeded()), rgb)


def test_grayscale_images_have_equal_channels():
    out = augment(images(batch=64), AugmentSpec(**NO_GEOMETRY, grayscale_p=0.5), seeded())
    gray = (out[:, 0] == out[:, 1]).all(dim=(1, 2)) & (out[:, 1] == out[:, 2]).all(dim=(1, 2))
    assert 10 < int(gray.sum()) < 54
    everything = augment(images(), AugmentSpec(**NO_GEOMETRY, grayscale_p=1.0), seeded())
    assert torch.equal(everything, kornia.color.rgb_to_grayscale(to_float(images())).expand(-1, 3, -1, -1))


def naive_jitter(image: torch.Tensor, kind: str, factor: float) -> torch.Tensor:
    """torchvision's adjust_brightness / adjust_contrast / adjust_saturation on one (3, H, W) image."""
    r, g, b = image
    gray = 0.299 * r + 0.587 * g + 0.114 * b
    base = {"brightness": torch.zeros_like(image), "contrast": gray.mean(), "saturation": gray}[kind]
    return (factor * image + (1 - factor) * base).clamp(0, 1)


@pytest.mark.parametrize("index, kind", [(0, "brightness"), (1, "contrast"), (2, "saturation")])
def test_jitter_factor_matches_naive_reference(index, kind):
    rgb = to_float(images())
    strengths = tuple(0.5 if i == index else 0.0 for i in range(4))
    factors, picked = sample_jitter(16, strengths, 0.5, seeded(7), rgb.device)
    assert picked.any() and not picked.all()
    assert factors[:, index].min() >= 0.5 and factors[:, index].max() <= 1.5 and factors[:, index].std() > 0.1
    out = color_jitter(rgb, strengths, 0.5, seeded(7))
    for i in range(16):
        expected = naive_jitter(rgb[i], kind, float(factors[i, index])) if picked[i] else rgb[i]
        torch.testing.assert_close(out[i], expected, atol=1e-6, rtol=0)


def test_strength_above_one_keeps_factors_non_negative():
    factors, _ = sample_jitter(1000, (1.5, 1.5, 1.5, 0.0), 1.0, seeded(), torch.device("cpu"))
    assert factors[:, :3].min() >= 0 and factors[:, :3].max() > 2


def test_hue_jitter_keeps_value_and_rotates_hue():
    rgb = to_float(images())
    out = color_jitter(rgb, (0, 0, 0, 0.5), 1.0, seeded())
    torch.testing.assert_close(out.amax(dim=1), rgb.amax(dim=1), atol=1e-5, rtol=0)  # V of HSV
    assert (out - rgb).abs().max() > 0.1
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    green = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(adjust_hue(red, torch.tensor([1 / 3])), green, atol=1e-5, rtol=0)


def test_invalid_spec_is_a_user_error():
    with pytest.raises(UserError, match="hue <= 0.5"):
        AugmentSpec(color_jitter=(0, 0, 0, 0.6))
    with pytest.raises(UserError, match="grayscale_p"):
        AugmentSpec(grayscale_p=1.5)
    with pytest.raises(UserError, match="crop_padding"):
        AugmentSpec(crop_padding=-1)
