"""Image models with auxiliary variables (issue 16): the categorical output, ψ, causal order over pixels
and RGB channels, the bound as the sum of its parts, and pyramid sampling."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from chromaproxy.pixelcnn.auxiliary import Embedding, half_resolution, quantised_gray
from chromaproxy.pixelcnn.categorical import Categorical
from chromaproxy.pixelcnn.image_models import Decode, GrayscalePixelCNN, PlainPixelCNN, PyramidPixelCNN
from chromaproxy.pixelcnn.levels import to_values
from chromaproxy.pixelcnn.mixture import LogisticMixture, bits_per_dim
from chromaproxy.pixelcnn.multiscale import MultiScalePixelCNN
from chromaproxy.pixelcnn.network import ConditionalPixelCNN
from chromaproxy.pixelcnn.rgb import Stack, rgb_pixelcnn
from chromaproxy.pixelcnn.sampling import sample_cached, sample_naive, sampler_for

TINY = Stack(filters=8, blocks=2, components=3, dropout=0.0)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _images(batch: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 3, side, side), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- ψ by hand
def test_quantised_gray_is_the_top_four_bits_of_the_rounded_luma():
    image = torch.tensor([[255, 255, 255], [0, 0, 0], [100, 50, 200], [16, 16, 16], [15, 15, 15]]).T.reshape(1, 3, 1, 5)
    # luma: 255 → 15; 0 → 0; 0.299·100 + 0.587·50 + 0.114·200 = 82.15 → 82 → 5; 16 → 1; 15 → 0
    assert quantised_gray(image).flatten().tolist() == [15, 0, 5, 1, 0]


def test_half_resolution_is_each_blocks_rounded_mean():
    image = torch.tensor([[0, 1, 10, 10], [1, 1, 10, 12], [255, 255, 3, 4], [255, 254, 4, 4]]).view(1, 1, 4, 4)
    # means: 0.75 → 1, 10.5 → 11 (half up), 254.75 → 255, 3.75 → 4
    assert half_resolution(image).flatten().tolist() == [1, 11, 255, 4]
    with pytest.raises(ValueError, match="even sides"):
        half_resolution(torch.zeros(1, 1, 3, 4, dtype=torch.long))


# ---------------------------------------------------------------- distributions
def test_the_16_way_gray_model_sums_to_one_over_every_2x2_image():
    torch.manual_seed(0)
    net = ConditionalPixelCNN(Categorical(16), filters=8, blocks=2, dropout=0.0).double().eval()
    grid = torch.tensor(list(itertools.product(range(16), repeat=4))).view(-1, 1, 2, 2)  # all 16^4 images
    values = to_values(grid, 16).double()
    with torch.no_grad():
        total = torch.cat([net.log_prob(chunk, None) for chunk in values.split(8192)]).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-9)


def test_uniform_models_give_exactly_the_bits_of_their_levels():
    categorical = Categorical(256)
    x = categorical.value(torch.randint(0, 256, (50, 1)))
    log_prob = categorical.log_prob(torch.zeros(50, 256), x)
    assert bits_per_dim(log_prob.sum(), 50).item() == pytest.approx(8.0, abs=1e-6)
    gray = Categorical(16).log_prob(torch.zeros(10, 16), torch.zeros(10, 1))
    assert bits_per_dim(gray.sum(), 10).item() == pytest.approx(4.0, abs=1e-6)


def test_categorical_draws_follow_the_gumbel_max_and_the_mode():
    categorical = Categorical(4)
    params = torch.tensor([[0.0, 3.0, 1.0, 0.5]]).expand(4000, -1)
    noise = torch.rand(4000, 4, generator=torch.Generator().manual_seed(0))
    drawn = categorical.index(categorical.draw(params, None, noise))[:, 0]
    frequencies = torch.bincount(drawn, minlength=4).float() / 4000
    assert torch.allclose(frequencies, torch.softmax(params[0], 0), atol=0.03)
    assert categorical.index(categorical.draw(params[:1], None, noise[:1], how="mode")).item() == 1


def test_variance_reduction_lowers_every_scale_by_the_same_factor():
    mixture = LogisticMixture(1, components=1, levels=256)
    params = torch.tensor([[0.0, 0.0, -3.0]]).expand(20000, -1)  # logit, μ = 0, log-scale −3: far from the clamp at ±1
    noise = torch.rand(20000, 2, generator=torch.Generator().manual_seed(0)).clamp(1e-6, 1 - 1e-6)
    spread = [mixture.draw(params, None, noise, variance_reduction=r).std().item() for r in (0.0, 0.5)]
    assert spread[1] / spread[0] == pytest.approx(math.exp(-0.5), rel=0.03)


# ---------------------------------------------------------------- causal order
@pytest.mark.parametrize("stack, side", [(TINY, 4), (Stack(8, 1, 3, 0.0, scales=3), 8)], ids=["one-scale", "u-net"])
def test_rgb_channels_and_pixels_see_only_what_precedes_them(stack, side):
    """d log p(x_{≤c} at pixel i) / dx is zero at every later pixel and, at pixel i, at channels > c; the
    pixel just left and the one just above always matter (no blind spot next to the pixel)."""
    torch.manual_seed(0)
    net = rgb_pixelcnn(stack).double().eval()
    n = side * side
    x = to_values(_images(1, side), 256).double().requires_grad_(True)
    params = net(x, None)[0].permute(1, 2, 0).reshape(n, -1)  # (H·W, P)
    values = x[0].permute(1, 2, 0).reshape(n, 3)
    for pixel, c in itertools.product(range(n), range(3)):
        marginal = net.mixture.log_prob(params[pixel : pixel + 1], values[pixel : pixel + 1], channels=c + 1)
        (grad,) = torch.autograd.grad(marginal.sum(), x, retain_graph=True)
        grad = grad[0].permute(1, 2, 0).reshape(n, 3)  # (pixel, channel)
        assert grad[pixel + 1 :].abs().sum() == 0
        assert grad[pixel, c + 1 :].abs().sum() == 0
        assert grad[pixel, c] != 0  # the value itself always matters
        if c == 0 and pixel % side:
            assert grad[pixel - 1].abs().sum() != 0
        if c == 0 and pixel >= side:
            assert grad[pixel - side].abs().sum() != 0


def test_the_u_net_is_pixelcnn_plus_plus_at_paper_size():
    """5 blocks per resolution at 3 resolutions: 15 up-pass and 5 + 6 + 6 down-pass gated blocks per stream,
    2 downsamplings and 2 upsamplings (the thesis's 36 layers), about PixelCNN++'s 53 M parameters; each
    down-pass block reads one kept up-pass map (every one is read) and the maps return to 32x32."""
    net = rgb_pixelcnn(Stack(160, 5, 10, 0.5, scales=3))
    assert isinstance(net, MultiScalePixelCNN)
    assert [len(stage) for stage in net.up] == [5, 5, 5] and [len(stage) for stage in net.down] == [5, 6, 6]
    assert len(net.downsize) == len(net.upsize) == 2
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(53.2e6, rel=0.02)
    small = rgb_pixelcnn(Stack(8, 2, 3, 0.0, scales=3))
    assert small(torch.zeros(2, 3, 32, 32), None).shape == (2, small.mixture.params, 32, 32)
    kept = small._up(*small.input_streams(torch.zeros(1, 4, 32, 32)), [None] * 3)
    assert len(kept) == 1 + sum(len(stage) for stage in small.down)  # the down pass starts from one, reads the rest
    assert [u.shape[-1] for u, _ in kept] == [32, 32, 32, 16, 16, 16, 8, 8, 8]


def test_a_u_net_is_sampled_by_the_naive_loop_and_a_one_scale_stack_by_the_cache():
    assert sampler_for(rgb_pixelcnn(TINY)) is sample_cached
    u_net = rgb_pixelcnn(Stack(8, 1, 3, 0.0, scales=2))
    assert sampler_for(u_net) is sample_naive
    torch.manual_seed(0)
    plain = PlainPixelCNN(Stack(8, 1, 3, 0.0, scales=2)).eval()
    images = plain.sample(2, 4, torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, 4, 4) and 0 <= images.min() and images.max() <= 255
    assert torch.equal(images, plain.sample(2, 4, torch.Generator().manual_seed(0)))


# ---------------------------------------------------------------- the bound and its parts
@pytest.mark.parametrize("scales", [1, 3])
def test_grayscale_bound_is_the_sum_of_its_two_parts(scales):
    """Also with the colour model a U-Net, the embedding pooled to each of its resolutions."""
    torch.manual_seed(0)
    colour = Stack(8, 1, 3, 0.0, scales)
    model = GrayscalePixelCNN(Stack(8, 1, 1, 0.0), colour, embedding_blocks=1).eval()
    image = _images(3, 8)
    parts = model.nll_parts(image)
    gray = to_values(quantised_gray(image), 16)
    expected_gray = -model.gray.log_prob(gray, None)
    expected_colour = -model.colour.log_prob(to_values(image, 256), model.embedding(gray))
    assert list(parts) == ["gray", "colour"]
    assert torch.allclose(parts["gray"], expected_gray) and torch.allclose(parts["colour"], expected_colour)


def test_pyramid_parts_model_each_resolution_given_the_one_below():
    torch.manual_seed(0)
    model = PyramidPixelCNN(TINY, TINY, scales=3, embedding_blocks=2, up_after=(1,)).eval()
    image = _images(2, 16)
    parts = model.nll_parts(image)
    assert list(parts) == ["4", "8", "16"]
    x8 = half_resolution(image)
    expected = -model.stages[1].log_prob(to_values(image, 256), model.embeddings[1](to_values(x8, 256)))
    assert torch.allclose(parts["16"], expected)


def test_embedding_resamples_after_the_blocks_it_is_told():
    embedding = Embedding(3, 8, blocks=15, down_after=(3,), up_after=(9, 12))
    assert embedding(torch.zeros(1, 3, 8, 8)).shape == (1, 8, 16, 16) and embedding.scale == 2
    with pytest.raises(ValueError, match="1..2"):
        Embedding(3, 8, blocks=2, up_after=(3,))


# ---------------------------------------------------------------- sampling
def test_pyramid_sampling_gives_the_requested_side_and_conditions_each_stage_on_the_last(monkeypatch):
    torch.manual_seed(0)
    model = PyramidPixelCNN(TINY, TINY, scales=3, embedding_blocks=1, up_after=(1,)).eval()
    seen = []
    for embedding in model.embeddings:
        embedding.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].clone()))
    images = model.sample(2, 16, torch.Generator().manual_seed(0), Decode())
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.long
    assert 0 <= images.min() and images.max() <= 255
    assert [s.shape[-1] for s in seen] == [4, 8]  # stage 1 embeds the 4x4 draw, stage 2 the 8x8 one
    again = model.sample(2, 16, torch.Generator().manual_seed(0), Decode())
    assert torch.equal(images, again)


def test_map_sampling_and_grayscale_sampling_shapes():
    torch.manual_seed(0)
    plain = PlainPixelCNN(TINY).eval()
    map_draw = plain.sample(2, 4, torch.Generator().manual_seed(0), Decode("component-mode"))
    assert map_draw.shape == (2, 3, 4, 4)
    gray = GrayscalePixelCNN(Stack(8, 1, 1, 0.0), TINY, embedding_blocks=1).eval()
    assert gray.sample(2, 4, torch.Generator().manual_seed(0)).shape == (2, 3, 4, 4)
