"""The random resized crop (augment.crop_scale): per-image crops against slices, scale, config errors."""

import pytest
import torch
import torch.nn.functional as F

from chromaproxy.config import load_config
from chromaproxy.data.augment import AugmentSpec, augment
from chromaproxy.data.resized_crop import crop_resize, random_resized_crop
from chromaproxy.errors import UserError


def test_per_image_sides_equal_a_slice_then_bilinear_resize():
    rgb = torch.rand(3, 3, 32, 32)
    corners, sides = torch.tensor([[0, 0], [5, 12], [20, 3]]), torch.tensor([32, 17, 9])
    out = crop_resize(rgb, corners, sides)
    for image, (y, x), side, got in zip(rgb, corners.tolist(), sides.tolist(), out):
        piece = image[None, :, y : y + side, x : x + side]
        expected = F.interpolate(piece, size=(32, 32), mode="bilinear", align_corners=False)[0]
        assert torch.allclose(got, expected, atol=1e-5)


def test_the_whole_area_is_the_image_itself():
    rgb = torch.rand(4, 3, 16, 16)
    assert torch.allclose(random_resized_crop(rgb, (1.0, 1.0), torch.Generator().manual_seed(0)), rgb, atol=1e-5)


def test_a_quarter_of_the_area_spans_half_the_side_and_depends_only_on_the_generator():
    columns = torch.arange(32.0).expand(8, 3, 32, 32)  # each pixel holds its column index
    first = random_resized_crop(columns, (0.25, 0.25), torch.Generator().manual_seed(1))
    again = random_resized_crop(columns, (0.25, 0.25), torch.Generator().manual_seed(1))
    assert torch.equal(first, again)
    spans = first.amax(dim=(1, 2, 3)) - first.amin(dim=(1, 2, 3))  # (B,) columns covered by each crop
    assert torch.all(spans == 15), spans
    assert len(set(first[:, 0, 0, 0].tolist())) > 1, "crops at different places"


def test_augment_applies_it_only_when_switched_on():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    plain = AugmentSpec(crop_padding=0, hflip=False)
    assert torch.equal(augment(images, plain, torch.Generator()), images.float() / 255)
    zoomed = augment(images, AugmentSpec(crop_padding=0, hflip=False, crop_scale=(0.3, 0.6)), torch.Generator())
    assert zoomed.shape == (6, 3, 32, 32) and 0 <= zoomed.min() and zoomed.max() <= 1
    assert not torch.allclose(zoomed, images.float() / 255)


@pytest.mark.parametrize("value", ["[0.6,0.2]", "[0.0,1.0]", "[0.5]"])
def test_a_bad_range_is_one_clear_error(value):
    with pytest.raises(UserError, match=r"augment.crop_scale=.* needs 2 area shares 0 < low <= high <= 1"):
        load_config(None, [f"augment.crop_scale={value}"])
