"""model.input: channel counts, normalisation and the known values of L and Sobel."""

from __future__ import annotations

import pytest
import torch

from chromaproxy.data.sources import CIFAR10_NORMALISATION
from chromaproxy.data.unpickle import safe_load
from chromaproxy.errors import UserError
from chromaproxy.models.inputs import INPUTS, SOBEL_STD, ModelInput, input_channels

CIFAR10_MEAN, CIFAR10_STD = CIFAR10_NORMALISATION


def flat(value: float, size: int = 8) -> torch.Tensor:
    return torch.full((2, 3, size, size), value)


@pytest.mark.parametrize("kind, channels", [("rgb", 3), ("L", 1), ("sobel", 2)])
def test_channels(kind, channels):
    assert kind in INPUTS and input_channels(kind) == channels
    out = ModelInput(kind, *CIFAR10_NORMALISATION)(torch.rand(2, 3, 8, 8))
    assert out.shape == (2, channels, 8, 8) and out.dtype == torch.float32


def test_unknown_input_lists_the_choices():
    with pytest.raises(UserError, match="rgb, L, sobel"):
        input_channels("lab")


def test_rgb_standardisation():
    model_input = ModelInput("rgb", *CIFAR10_NORMALISATION)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    torch.testing.assert_close(model_input(mean), torch.zeros(1, 3, 4, 4))
    one_std = mean + torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model_input(one_std), torch.ones(1, 3, 4, 4))
    assert list(model_input.parameters()) == [] and model_input.state_dict() == {}


def test_lightness_of_white_black_and_mid_gray():
    L = ModelInput("L", *CIFAR10_NORMALISATION)
    torch.testing.assert_close(L(flat(1.0)), torch.ones(2, 1, 8, 8), atol=1e-3, rtol=0)
    torch.testing.assert_close(L(flat(0.0)), -torch.ones(2, 1, 8, 8), atol=1e-3, rtol=0)
    # sRGB 0.5 is linear 0.2140, so L = 116 * 0.2140^(1/3) - 16 = 53.39
    torch.testing.assert_close(L(flat(0.5)), torch.full((2, 1, 8, 8), (53.39 - 50) / 50), atol=1e-3, rtol=0)


def test_lightness_of_the_primaries():
    pure = torch.eye(3).view(3, 3, 1, 1)  # red, green, blue
    L = ModelInput("L", *CIFAR10_NORMALISATION)(pure).flatten() * 50 + 50
    torch.testing.assert_close(L, torch.tensor([53.24, 87.73, 32.30]), atol=0.05, rtol=0)


def test_sobel_of_constant_is_zero_and_of_horizontal_ramp_has_no_y_gradient():
    sobel = ModelInput("sobel", *CIFAR10_NORMALISATION)
    assert sobel(flat(0.3)).abs().max() < 1e-5
    ramp = torch.linspace(0, 1, 16).expand(1, 3, 16, 16)  # brightness grows along x only
    gradients = sobel(ramp)
    assert gradients[:, 1].abs().max() < 1e-5  # float rounding of the convolution only
    assert (gradients[:, 0, :, 1:-1] > 0).all()
    vertical = sobel(ramp.transpose(2, 3))
    assert vertical[:, 0].abs().max() < 1e-5 and (vertical[:, 1, 1:-1] > 0).all()



def test_sobel_and_rgb_are_near_unit_std_on_cifar(cifar_root):
    batch = safe_load(cifar_root / "cifar10" / "test_batch")
    images = torch.from_numpy(batch[b"data"][:2000]).view(-1, 3, 32, 32).float() / 255  # (N, 3, 32, 32)
    assert 0.8 < float(ModelInput("sobel", *CIFAR10_NORMALISATION)(images).std()) < 1.25
    assert 0.8 < float(ModelInput("rgb", *CIFAR10_NORMALISATION)(images).std()) < 1.25


def test_sobel_matches_a_hand_computed_example():
    """A single bright pixel (gray 1 at the centre of a black 5x5 image): the normalised Sobel kernels
    [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8 (x) and their transpose (y) give, one pixel left of it,
    d/dx = +2/8 (the pixel is to the right, weight 2), diagonally up-left +1/8 in both, and 0 at the pixel."""
    image = torch.zeros(1, 3, 5, 5)
    image[..., 2, 2] = 1.0
    gradients = ModelInput("sobel", *CIFAR10_NORMALISATION)(image) * SOBEL_STD  # undo the scaling
    dx, dy = gradients[0]
    assert dx[2, 1].item() == pytest.approx(2 / 8, abs=1e-6) and dx[2, 3].item() == pytest.approx(-2 / 8, abs=1e-6)
    assert dy[1, 2].item() == pytest.approx(2 / 8, abs=1e-6) and dy[3, 2].item() == pytest.approx(-2 / 8, abs=1e-6)
    assert dx[1, 1].item() == pytest.approx(1 / 8, abs=1e-6) and dy[1, 1].item() == pytest.approx(1 / 8, abs=1e-6)
    assert dx[2, 2].item() == pytest.approx(0, abs=1e-6) and dx[0, 0].item() == pytest.approx(0, abs=1e-6)
