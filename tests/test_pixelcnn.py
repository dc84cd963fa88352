"""The PixelCNN++ core: the mixture's likelihood and decoding, causality, and cached against naive sampling."""

from __future__ import annotations

import math

import pytest
import torch

from chromaproxy.pixelcnn.layers import ShiftedConv
from chromaproxy.pixelcnn.mixture import LogisticMixture, bits_per_dim
from chromaproxy.pixelcnn.network import ConditionalPixelCNN
from chromaproxy.pixelcnn.sampling import draw_noise, sample_cached, sample_naive

DOUBLE = torch.float64


def _params(mixture: LogisticMixture, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, mixture.params, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE)


@pytest.mark.parametrize("channels,extra", [(1, 0), (2, 1), (3, 0)])
def test_probabilities_of_every_discrete_value_sum_to_one(channels, extra):
    mixture = LogisticMixture(channels, components=3, levels=6, extra=extra)
    grid = mixture.value(torch.arange(6), DOUBLE)
    values = torch.cartesian_prod(*[grid] * channels).reshape(-1, channels)  # (6^C, C)
    for seed in range(3):
        params = _params(mixture, 1, seed).expand(len(values), -1)
        side = torch.full((len(values), extra), 0.3, dtype=DOUBLE)
        total = mixture.log_prob(params, values, side).exp().sum()
        assert total.item() == pytest.approx(1.0, abs=1e-12)


def _naive_log_prob(mixture: LogisticMixture, params: torch.Tensor, x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
    """The definition, one pixel, component and channel at a time, with plain sigmoid differences."""
    out = []
    for n in range(len(x)):
        logits, mu, log_s, coeff = (t[0] for t in mixture.split(params[n : n + 1]))
        total = 0.0
        for k in range(mixture.components):
            p = torch.softmax(logits, 0)[k]
            for c in range(mixture.channels):
                start = c * (c - 1) // 2 + c * mixture.extra
                known = torch.cat([x[n, :c], extra[n]])
                mean = mu[k, c] + (coeff[k, start : start + len(known)] * known).sum()
                s, h = torch.exp(log_s[k, c]), mixture.half_bin
                upper = 1.0 if x[n, c] > 1 - h else torch.sigmoid((x[n, c] - mean + h) / s)
                lower = 0.0 if x[n, c] < -1 + h else torch.sigmoid((x[n, c] - mean - h) / s)
                p = p * (upper - lower)
            total = total + p
        out.append(torch.log(total))
    return torch.stack(out)


def test_log_prob_matches_the_definition_including_edge_levels():
    mixture = LogisticMixture(2, components=4, levels=16, extra=1)
    params = _params(mixture, 12)
    generator = torch.Generator().manual_seed(1)
    x = mixture.value(torch.randint(0, 16, (12, 2), generator=generator), DOUBLE)
    x[0], x[1] = -1.0, 1.0  # both edge bins
    extra = torch.rand(12, 1, generator=generator, dtype=DOUBLE) * 2 - 1
    torch.testing.assert_close(mixture.log_prob(params, x, extra), _naive_log_prob(mixture, params, x, extra))


def test_far_tail_bins_keep_a_finite_exact_log_probability():
    """Where σ(plus) and σ(minus) are both ≈ 1 their difference cancels in float32; the log-space form does not."""
    mixture = LogisticMixture(1, components=1, levels=256)
    params = torch.tensor([[0.0, 0.9, -5.0]])  # logit, μ = 0.9, log s = -5: the level -0.5 is 200 scales away
    value = mixture.log_prob(params, torch.tensor([[-0.5]]))
    reference = _naive_log_prob(mixture, params.double(), torch.tensor([[-0.5]], dtype=DOUBLE), torch.zeros(1, 0, dtype=DOUBLE))
    assert torch.isfinite(value).all() and value.item() == pytest.approx(reference.item(), rel=1e-4)


@pytest.mark.parametrize("levels", [2, 16, 256])
def test_a_uniform_distribution_gives_log2_levels_bits_per_dim(levels):
    dims = 16 * 16 * 2
    log_prob = torch.full((3,), dims * math.log(1 / levels))
    assert bits_per_dim(log_prob, dims) == pytest.approx(torch.full((3,), math.log2(levels)))


def test_mode_is_the_most_probable_value_given_earlier_channels():
    mixture = LogisticMixture(2, components=3, levels=8, extra=1)
    grid = mixture.value(torch.arange(8), DOUBLE)
    params, side = _params(mixture, 1, seed=4), torch.tensor([[0.2]], dtype=DOUBLE)
    mode = mixture.draw(params, side, torch.full((1, 5), 0.5, dtype=DOUBLE), how="mode")[0]
    pairs = torch.cartesian_prod(grid, grid)
    joint = mixture.log_prob(params.expand(64, -1), pairs, side.expand(64, -1)).exp().reshape(8, 8)  # (a, b)
    best_a = grid[joint.sum(1).argmax()]
    assert mode[0] == best_a and mode[1] == grid[joint[grid == best_a][0].argmax()]


def test_draws_lie_on_the_levels_and_low_temperature_concentrates_them():
    mixture = LogisticMixture(2, components=5, levels=32, extra=1)
    params = _params(mixture, 1).expand(4000, -1)
    noise = torch.rand(4000, mixture.noise_size(), generator=torch.Generator().manual_seed(0), dtype=DOUBLE)
    side = torch.zeros(4000, 1, dtype=DOUBLE)
    hot, cold = (mixture.draw(params, side, noise, "sample", t) for t in (1.0, 0.1))
    assert torch.equal(mixture.quantize(hot), hot)
    assert cold.std(0).sum() < hot.std(0).sum()


# ------------------------------------------------------------------ the network


def _net(autoregressive: bool = True, dropout: float = 0.0) -> ConditionalPixelCNN:
    torch.manual_seed(0)
    mixture = LogisticMixture(2, components=3, levels=256, extra=1)
    return ConditionalPixelCNN(mixture, filters=8, blocks=2, cond_channels=4, dropout=dropout, autoregressive=autoregressive).double().eval()


def test_shifted_convs_read_only_rows_above_and_the_left_of_the_current_row():
    for kind, kernel in (("down", (2, 3)), ("down-right", (2, 2))):
        conv = ShiftedConv(1, 1, kernel, kind).double()
        x = torch.zeros(1, 1, 5, 5, dtype=DOUBLE, requires_grad=True)
        conv(x)[0, 0, 2, 2].backward()
        rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
        assert rows.max() <= 2 and (kind == "down" or cols.max() <= 2)


def test_no_pixel_sees_itself_or_a_later_pixel():
    """Changing pixel i never changes what is predicted for pixels ≤ i: the gradient of the output at pixel
    p with respect to the input is zero at p and after it (raster order), and non-zero somewhere before."""
    net, size = _net(), 5
    for p in range(size * size):
        x = torch.randn(1, 2, size, size, dtype=DOUBLE, requires_grad=True)
        net(x, torch.randn(1, 4, size, size, dtype=DOUBLE))[0, :, p // size, p % size].sum().backward()
        reach = x.grad[0].abs().sum(0).flatten()  # (H·W,)
        assert torch.all(reach[p:] == 0)
        assert p == 0 or reach[:p].sum() > 0


def test_without_autoregression_the_output_ignores_the_image():
    net = _net(autoregressive=False)
    cond = torch.randn(2, 4, 4, 4, dtype=DOUBLE)
    first, second = (net(torch.rand(2, 2, 4, 4, dtype=DOUBLE) * 2 - 1, cond) for _ in range(2))
    torch.testing.assert_close(first, second)


@pytest.mark.parametrize("how", ["sample", "component-mode", "mode"])
@pytest.mark.parametrize("autoregressive", [True, False])
def test_cached_sampling_equals_naive_sampling_for_the_same_random_numbers(how, autoregressive):
    net, height, width = _net(autoregressive), 5, 4
    cond = torch.randn(3, 4, height, width, dtype=DOUBLE)
    extra = torch.rand(3, 1, height, width, dtype=DOUBLE) * 2 - 1
    noise = draw_noise(3, net, height, width, torch.Generator().manual_seed(2), "cpu").double()
    naive = sample_naive(net, cond, extra, noise, how, temperature=0.8)
    assert torch.equal(sample_cached(net, cond, extra, noise, how, temperature=0.8), naive)
    assert how == "mode" or naive.unique().numel() > 5


def test_cached_sampling_refuses_a_network_in_training_mode():
    net = _net(dropout=0.5).train()
    noise = draw_noise(1, net, 2, 2, torch.Generator().manual_seed(0), "cpu").double()
    with pytest.raises(ValueError, match="eval mode"):
        sample_cached(net, torch.zeros(1, 4, 2, 2, dtype=DOUBLE), None, noise)
