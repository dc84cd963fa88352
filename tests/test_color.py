"""The color toolkit against reference values and naive per-pixel references, on tiny synthetic batches."""

from __future__ import annotations

import math

import pytest
import torch

from chromaproxy.color import (
    bin_counts,
    chroma_weight,
    data_bins,
    decode_annealed_mean,
    decode_mean,
    decode_mode,
    empirical_prior,
    histogram_target,
    hue_chroma,
    hue_weight,
    is_grayish,
    join_lab,
    lab_to_rgb,
    load_prior,
    nearest_bin,
    pixel_weights,
    rebalance_weights,
    rgb_to_lab,
    save_prior,
    smooth_prior,
    soft_encode,
    split_lab,
    zhang_313_bins,
)
from chromaproxy.errors import UserError


def pixel(*values: float) -> torch.Tensor:
    """One pixel as a (1, C, 1, 1) batch."""
    return torch.tensor(values).view(1, -1, 1, 1)


def random_ab(B: int = 2, H: int = 5, W: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(B, 2, H, W, generator=torch.Generator().manual_seed(seed)) * 160 - 80


# ---- Lab


@pytest.mark.parametrize(
    "rgb, lab, tol",
    [
        ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0), 1e-2),
        ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20), 0.05),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1e-2),
    ],
)
def test_rgb_to_lab_reference_values(rgb, lab, tol):
    assert torch.allclose(rgb_to_lab(pixel(*rgb)).flatten(), torch.tensor(lab), atol=tol)


def test_mid_gray_lightness():
    assert rgb_to_lab(pixel(0.5, 0.5, 0.5))[0, 0].item() == pytest.approx(53.39, abs=0.01)


def test_lab_round_trip():
    rgb = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    lab = rgb_to_lab(rgb)
    assert (lab_to_rgb(lab) - rgb).abs().max() < 1e-3
    L, ab = split_lab(lab)
    assert L.shape == (4, 1, 16, 16) and ab.shape == (4, 2, 16, 16)
    assert torch.equal(join_lab(L, ab), lab)
    assert ab.abs().max() < 110


def test_lab_to_rgb_clips_out_of_gamut():
    rgb = lab_to_rgb(pixel(50.0, 120.0, -120.0))
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert lab_to_rgb(pixel(50.0, 120.0, -120.0), clip=False).min() < 0


# ---- bins


def test_zhang_bins_count_and_members():
    centers = zhang_313_bins()
    assert centers.shape == (313, 2) and centers.dtype == torch.float32
    members = {tuple(c) for c in centers.int().tolist()}
    assert len(members) == 313
    for present in [(0, 0), (-90, 50), (-90, 90), (100, -90), (100, 0), (60, -110), (0, 100), (-50, 100)]:
        assert present in members
    for absent in [(-90, 40), (-100, 0), (100, 10), (110, 0), (50, 90), (-60, -30), (10, 100)]:
        assert absent not in members


def test_data_bins_are_the_non_empty_cells():
    ab = torch.tensor([[1.0, 2.0], [4.9, -4.9], [12.0, 0.0], [-31.0, 44.0], [-29.0, 44.0]])
    assert data_bins(ab).tolist() == [[-30.0, 40.0], [0.0, 0.0], [10.0, 0.0]]
    assert data_bins(ab, min_count=2).tolist() == [[-30.0, 40.0], [0.0, 0.0]]
    assert data_bins(ab, bin_size=15).tolist() == [[-30.0, 45.0], [0.0, 0.0], [15.0, 0.0]]
    image = ab.T.reshape(1, 2, 5, 1)  # the (B, 2, H, W) form gives the same bins
    assert torch.equal(data_bins(image), data_bins(ab))
    with pytest.raises(UserError):
        data_bins(ab, min_count=3)


def test_nearest_bin_matches_naive_reference():
    ab, centers = random_ab(), zhang_313_bins()
    got = nearest_bin(ab, centers)
    assert got.shape == (2, 5, 6) and got.dtype == torch.int64
    d2 = ((ab.permute(0, 2, 3, 1)[..., None, :] - centers) ** 2).sum(-1)  # (B, H, W, K)
    assert torch.equal(got, d2.argmin(-1))


# ---- soft encoding and decoding


def test_soft_encode_matches_naive_reference():
    ab, centers = random_ab(), zhang_313_bins()
    target = soft_encode(ab, centers, k=5, sigma=5.0)
    assert target.shape == (2, 313, 5, 6)
    b, y, x = 1, 3, 2
    d2 = ((ab[b, :, y, x] - centers) ** 2).sum(1)
    near = d2.argsort()[:5]
    expected = torch.zeros(313)
    expected[near] = torch.exp(-d2[near] / 50) / torch.exp(-d2[near] / 50).sum()
    assert torch.allclose(target[b, :, y, x], expected, atol=1e-4)


def test_soft_encode_sums_to_one_and_peaks_at_nearest_bin():
    ab, centers = random_ab(), zhang_313_bins()
    target = soft_encode(ab, centers)
    assert torch.allclose(target.sum(1), torch.ones(2, 5, 6))
    assert ((target > 0).sum(1) == 10).all()
    assert torch.equal(target.argmax(1), nearest_bin(ab, centers))


def test_soft_encode_at_a_center_and_one_hot():
    centers = zhang_313_bins()
    at_center = pixel(30.0, -40.0)
    index = centers.tolist().index([30.0, -40.0])
    assert soft_encode(at_center, centers).argmax(1).item() == index
    one_hot = soft_encode(random_ab(), centers, k=1)
    assert torch.equal(one_hot.amax(1), torch.ones(2, 5, 6)) and torch.equal(one_hot.sum(1), torch.ones(2, 5, 6))


def test_soft_encode_far_from_all_centers_stays_finite():
    target = soft_encode(pixel(500.0, 500.0), zhang_313_bins())
    assert torch.isfinite(target).all() and target.sum().item() == pytest.approx(1.0)


def test_soft_encode_rejects_k_above_bin_count():
    with pytest.raises(UserError):
        soft_encode(random_ab(), zhang_313_bins()[:4], k=5)


def test_decodings():
    centers = zhang_313_bins()
    logits = torch.randn(2, 313, 3, 4, generator=torch.Generator().manual_seed(0))
    logits[0, 17, 1, 2] = 1000.0  # a very peaked (one-hot) prediction
    for decode in (decode_annealed_mean, decode_mean, decode_mode):
        ab = decode(logits, centers)
        assert ab.shape == (2, 2, 3, 4)
        assert torch.allclose(ab[0, :, 1, 2], centers[17])
    expectation = torch.einsum("bkhw,kc->bchw", logits.softmax(1), centers)
    assert torch.allclose(decode_mean(logits, centers), expectation, atol=1e-4)
    cold = decode_annealed_mean(logits, centers, temperature=1e-3)
    assert torch.allclose(cold, decode_mode(logits, centers), atol=1e-3)
    with pytest.raises(UserError):
        decode_annealed_mean(logits, centers, temperature=0.0)


def test_annealing_saturates_the_mean():
    """Lower T moves the decoded ab away from the desaturated mean toward the mode."""
    centers = zhang_313_bins()
    logits = torch.randn(1, 313, 8, 8, generator=torch.Generator().manual_seed(1)) * 2
    norms = [decode_annealed_mean(logits, centers, t).norm(dim=1).mean() for t in (1.0, 0.38, 0.1)]
    assert norms[0] < norms[1] < norms[2]


# ---- rebalancing


def test_bin_counts_and_prior():
    centers = zhang_313_bins()
    batches = [random_ab(seed=0), random_ab(seed=1)]
    counts = bin_counts(batches, centers)
    assert counts.dtype == torch.float64 and counts.sum() == 2 * 2 * 5 * 6
    hard = torch.bincount(torch.cat([nearest_bin(ab, centers).flatten() for ab in batches]), minlength=313)
    assert torch.equal(counts, hard.double())
    p = empirical_prior(batches, centers)
    assert p.shape == (313,) and p.sum().item() == pytest.approx(1.0) and (p >= 0).all()
    assert torch.equal(smooth_prior(counts, centers, sigma=0), counts / counts.sum())


def test_smooth_prior_spreads_to_neighbours_by_distance():
    centers = zhang_313_bins()
    index = {tuple(c): i for i, c in enumerate(centers.int().tolist())}
    counts = torch.zeros(313, dtype=torch.float64)
    counts[index[(0, 0)]] = 1.0
    p = smooth_prior(counts, centers, sigma=5.0)
    side, diagonal = p[index[(10, 0)]], p[index[(10, 10)]]
    assert p[index[(0, 0)]] > side > diagonal > 0
    assert (side / diagonal).item() == pytest.approx(math.exp(2.0))  # exp(-100/50) / exp(-200/50)
    assert 0 < p[index[(50, 50)]] < 1e-40  # far bins keep a tiny mass, hence a finite (maximal) weight
    assert torch.isfinite(rebalance_weights(p)).all()
    with pytest.raises(UserError):
        smooth_prior(torch.zeros(313, dtype=torch.float64), centers)


def test_rebalance_weights():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0], dtype=torch.float64)
    w = rebalance_weights(p, lam=0.5)
    assert (p * w).sum().item() == pytest.approx(1.0, abs=1e-6)
    assert w[4] == 0 and (w[:4].diff() > 0).all()  # rarer bins weigh more
    mix = 0.5 * p[:4] + 0.5 / 4
    assert torch.allclose(w[:4], (1 / mix) / (p[:4] / mix).sum())
    assert torch.allclose(rebalance_weights(p, lam=1.0), torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64))
    flat = rebalance_weights(p, lam=0.0)  # every bin of the support weighs the same in total
    assert torch.allclose(p * flat, torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0], dtype=torch.float64))
    with pytest.raises(UserError):
        rebalance_weights(p, lam=1.5)


def test_pixel_weights_and_grayish():
    centers = zhang_313_bins()
    ab = random_ab()
    w = torch.arange(313, dtype=torch.float32)
    weights = pixel_weights(soft_encode(ab, centers), w)
    assert weights.shape == (2, 5, 6)
    assert torch.equal(weights, nearest_bin(ab, centers).float())
    gray = torch.full((3, 2, 4, 4), 4.0)
    gray[1, 0, 2, 2] = -5.5
    gray[2, 1, 0, 0] = 5.0
    assert is_grayish(gray).tolist() == [True, False, True]


def test_prior_file_round_trip(tmp_path):
    centers = zhang_313_bins()
    p = empirical_prior([random_ab()], centers)
    w = rebalance_weights(p)
    save_prior(tmp_path / "prior.safetensors", centers, p, w)
    loaded = load_prior(tmp_path / "prior.safetensors")
    assert torch.equal(loaded.centers, centers) and torch.equal(loaded.p, p) and torch.equal(loaded.w, w)
    with pytest.raises(UserError):
        load_prior(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError):
        load_prior(tmp_path / "junk.safetensors")


# ---- Larsson hue/chroma histograms


def test_hue_chroma_reference_values():
    colors = torch.tensor(
        [[0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0.5, 0.25, 0.25], [1.0, 0.0, 1e-7]]
    )
    hue, chroma = hue_chroma(colors.T.reshape(1, 3, 8, 1))
    hue, chroma = hue.flatten(), chroma.flatten()
    expected = torch.tensor([0, 0, 1 / 3, 2 / 3, 1 / 6, 5 / 6, 0, 0])
    assert torch.allclose(hue[:7], expected[:7], atol=1e-6)
    assert 0 <= hue[7] < 1  # a hair below hue 1 must not round up to 1.0
    assert torch.allclose(chroma, torch.tensor([0, 1, 1, 1, 1, 1, 0.25, 1]), atol=1e-6)


def test_hard_histogram_target():
    values = torch.tensor([0.0, 0.5, 0.99, 1.0]).view(1, 2, 2)
    target = histogram_target(values, bins=32)
    assert target.shape == (1, 32, 2, 2)
    assert torch.equal(target.sum(1), torch.ones(1, 2, 2))
    assert target.argmax(1).flatten().tolist() == [0, 16, 31, 31]
    assert histogram_target(values, bins=32, circular=True).argmax(1).flatten().tolist() == [0, 16, 31, 0]


def test_soft_histogram_target():
    values = torch.tensor([0.25 + 0.5 / 32, 0.999, 0.001]).view(1, 1, 3)
    soft = histogram_target(values, bins=32, soft=True)
    assert torch.allclose(soft.sum(1), torch.ones(1, 1, 3))
    assert torch.allclose(soft[0, 8, 0, 0], torch.tensor(1.0))  # exactly at bin 8's center
    assert soft[0, 31, 0, 1] == 1 and soft[0, 0, 0, 2] == 1  # beyond the outer centers: no wrap without circular
    hue = histogram_target(values, bins=32, soft=True, circular=True)
    assert torch.allclose(hue.sum(1), torch.ones(1, 1, 3))
    assert hue[0, 0, 0, 1] > 0.4 and hue[0, 31, 0, 1] > 0.4  # near 1.0 wraps to bin 0
    assert hue[0, 31, 0, 2] > 0.4 and hue[0, 0, 0, 2] > 0.5  # near 0.0 wraps to bin 31


def test_loss_weights():
    chroma = torch.tensor([0.0, 0.2, 1.0])
    assert torch.allclose(hue_weight(chroma), torch.tensor([0.0, 1.0, 5.0]))
    L = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    assert torch.allclose(chroma_weight(L), torch.tensor([0.0, 0.3, 1.0, 0.3, 0.0]))
