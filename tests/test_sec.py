"""SEC's pieces against naive references: GWRP, the seeding, expansion and constrain losses, localisation
cues, and the dense CRF's mean-field step against a loop over every pair of pixels."""

from __future__ import annotations

import math

import pytest
import torch

from chromaproxy.segment.crf import CrfParams, dense_crf, kernel_matrix, mean_field_step
from chromaproxy.segment.sec import (
    background_cues, constrain_loss, expansion_loss, foreground_cues, gwrp, localisation_cues, seeding_loss,
)


def _probs(b=2, k=4, h=5, w=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(b, k, h, w, generator=generator, dtype=torch.float64), dim=1)


def _naive_gwrp(values: list[float], d: float) -> float:
    ranked = sorted(values, reverse=True)
    weights = [d**j if j else 1.0 for j in range(len(ranked))]
    return sum(w * v for w, v in zip(weights, ranked)) / sum(weights)


@pytest.mark.parametrize("d", [0.0, 0.5, 0.996, 1.0])
def test_gwrp_is_a_sorted_weighted_sum_between_max_and_mean(d):
    scores = _probs()
    pooled = gwrp(scores, d)
    assert pooled.shape == (2, 4)
    for b in range(2):
        for k in range(4):
            assert pooled[b, k].item() == pytest.approx(_naive_gwrp(scores[b, k].flatten().tolist(), d))
    if d == 0.0:
        assert torch.allclose(pooled, scores.flatten(2).amax(-1))
    if d == 1.0:
        assert torch.allclose(pooled, scores.mean(dim=(2, 3)))


def test_seeding_loss_counts_only_cue_pixels():
    probs = _probs()
    cues = torch.zeros_like(probs, dtype=torch.bool)
    cues[0, 1, :2, :3] = True
    cues[0, 0, 4, :] = True
    cues[1, 2, 1, 1] = True
    loss = seeding_loss(probs.log(), cues)
    naive = []
    for b in range(2):
        picked = [math.log(probs[b, k, y, x]) for k, y, x in cues[b].nonzero().tolist()]
        naive.append(-sum(picked) / len(picked))
    assert loss.item() == pytest.approx(sum(naive) / 2)
    elsewhere = torch.where(cues, probs, torch.rand_like(probs)).log()  # change every non-cue value
    assert seeding_loss(elsewhere, cues).item() == pytest.approx(loss.item())


def test_expansion_loss_matches_its_definition():
    probs = _probs(k=5)
    labels = torch.tensor([[True, True, False, True, False], [True, False, False, False, True]])
    loss = expansion_loss(probs, labels, d_fg=0.9, d_bg=0.95)
    total = 0.0
    for b in range(2):
        values = lambda k: probs[b, k].flatten().tolist()  # noqa: E731
        present = [k for k in range(1, 5) if labels[b, k]]
        absent = [k for k in range(1, 5) if not labels[b, k]]
        total += -sum(math.log(_naive_gwrp(values(k), 0.9) + 1e-5) for k in present) / len(present)
        total += -sum(math.log(1 - max(values(k)) + 1e-5) for k in absent) / len(absent)
        total += -math.log(_naive_gwrp(values(0), 0.95) + 1e-5)
    assert loss.item() == pytest.approx(total / 2)


def test_constrain_loss_is_the_mean_kl_from_the_crf_output():
    p, q = _probs(seed=1), _probs(seed=2)
    naive = (q * (q.log() - p.log())).sum(1).mean()
    assert constrain_loss(p, q).item() == pytest.approx(naive.item(), rel=1e-4)
    assert constrain_loss(p, p).item() == pytest.approx(0.0, abs=1e-6)


def test_foreground_cues_keep_present_classes_above_a_fifth_of_their_peak():
    cams = torch.zeros(1, 3, 2, 2)
    cams[0, 1] = torch.tensor([[1.0, 0.1], [0.3, 0.0]])
    cams[0, 2] = torch.tensor([[5.0, 5.0], [5.0, 5.0]])  # absent: never a cue
    cues = foreground_cues(cams, torch.tensor([[True, True, False]]))
    assert cues[0, 1].tolist() == [[True, False], [True, False]] and not cues[0, 2].any() and not cues[0, 0].any()


def test_background_cues_are_the_least_salient_tenth_and_never_overlap_foreground_cues():
    saliency = torch.arange(20.0).view(1, 4, 5)
    assert background_cues(saliency, 0.1).flatten().nonzero().flatten().tolist() == [0, 1]
    cams = torch.zeros(1, 2, 4, 5)
    cams[0, 1] = torch.arange(20.0).view(4, 5)  # the class grows to the right and down
    cues = localisation_cues(cams, torch.tensor([[True, True]]), bg_fraction=0.25)
    assert cues[0, 0].flatten().nonzero().flatten().tolist() == [0, 1, 2, 3]  # 5 least salient, less value 4 (> 0.2 · 19)
    assert not (cues[0, 0] & cues[0, 1]).any() and cues[0, 1].sum() == 16  # values 4 … 19


def _naive_kernel(rgb, params):
    _, h, w = rgb.shape
    pixels = [(y, x) for y in range(h) for x in range(w)]
    alpha, gamma = params.theta_alpha / params.scale, params.theta_gamma / params.scale
    kernel = torch.zeros(h * w, h * w, dtype=torch.float64)
    for i, (yi, xi) in enumerate(pixels):
        for j, (yj, xj) in enumerate(pixels):
            if i == j:
                continue
            d_pos = (yi - yj) ** 2 + (xi - xj) ** 2
            d_col = sum((rgb[c, yi, xi].item() - rgb[c, yj, xj].item()) ** 2 for c in range(3))
            kernel[i, j] = params.w_bilateral * math.exp(-d_pos / (2 * alpha**2) - d_col / (2 * params.theta_beta**2)) \
                + params.w_gaussian * math.exp(-d_pos / (2 * gamma**2))
    return kernel


def test_mean_field_step_matches_a_loop_over_pixel_pairs():
    params = CrfParams(scale=12.0, theta_beta=40.0)
    rgb = torch.randint(0, 256, (1, 3, 4, 5), generator=torch.Generator().manual_seed(0)).double()
    probs = _probs(b=1, k=3, h=4, w=5)
    kernel = _naive_kernel(rgb[0], params)
    assert torch.allclose(kernel_matrix(rgb, params)[0], kernel)
    unary, q = -probs.log().view(1, 3, 20), probs.view(1, 3, 20)
    energy = torch.zeros(3, 20, dtype=torch.float64)
    for i in range(20):
        for label in range(3):
            pairwise = sum(kernel[i, j] * q[0, other, j] for j in range(20) for other in range(3) if other != label)
            energy[label, i] = unary[0, label, i] + pairwise
    assert torch.allclose(mean_field_step(unary, q, kernel_matrix(rgb, params)), torch.softmax(-energy, 0)[None])


def test_dense_crf_flips_a_lone_pixel_inside_a_uniform_region():
    rgb = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    rgb[:, :, :, 4:] = 255  # two colour regions
    probs = torch.full((1, 2, 8, 8), 0.2, dtype=torch.float64)
    probs[:, 0, :, :4], probs[:, 1, :, 4:] = 0.8, 0.8
    probs[:, :, 3, 1] = torch.tensor([0.4, 0.6])  # a weakly wrong pixel in the left region
    out = dense_crf(probs, rgb, CrfParams(iterations=5))
    assert out[0].argmax(0)[3, 1] == 0 and torch.allclose(out.sum(1), torch.ones(1, 8, 8, dtype=torch.float64))
    assert (out[0].argmax(0)[:, 4:] == 1).all()


def test_dense_crf_agrees_with_pydensecrf_when_it_is_installed():
    """pydensecrf filters with a permutohedral lattice (an approximation), so agreement is close, not exact."""
    dcrf = pytest.importorskip("pydensecrf.densecrf")
    import numpy as np

    h, w, k = 24, 32, 3
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, 12:], rgb[8:16, 4:10] = 200, (255, 0, 0)
    probs = _probs(b=1, k=k, h=h, w=w)
    params = CrfParams(w_bilateral=0.3, w_gaussian=0.1, scale=4.0, iterations=5)
    ours = dense_crf(probs, torch.from_numpy(rgb).permute(2, 0, 1)[None].double(), params)[0].numpy()
    crf = dcrf.DenseCRF2D(w, h, k)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(probs[0].numpy()).reshape(k, -1).astype(np.float32)))
    crf.addPairwiseGaussian(sxy=params.theta_gamma / params.scale, compat=params.w_gaussian, normalization=dcrf.NO_NORMALIZATION)
    crf.addPairwiseBilateral(sxy=params.theta_alpha / params.scale, srgb=params.theta_beta, rgbim=rgb,
                             compat=params.w_bilateral, normalization=dcrf.NO_NORMALIZATION)
    theirs = np.array(crf.inference(params.iterations)).reshape(k, h, w)
    assert (theirs.argmax(0) == ours.argmax(0)).mean() > 0.97 and np.abs(theirs - ours).mean() < 0.02
