"""Each colorization loss equals a naive per-location reference, and a few optimisation steps lower it."""

import math

import pytest
import torch

from chromaproxy.tasks.colorize_losses import histogram_kl, regression_loss, soft_cross_entropy

B, P, K = 2, 5, 7


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _distribution(*shape, seed=1):
    return _random(*shape, seed=seed).softmax(-1)


def test_regression_matches_a_naive_loop():
    predicted, target = _random(B, P, 2), _random(B, P, 2, seed=3)
    naive = sum((predicted[b, p, c] - target[b, p, c]) ** 2 for b in range(B) for p in range(P) for c in range(2)) / (B * P)
    assert regression_loss(predicted, target).item() == pytest.approx(naive.item(), rel=1e-5)


def test_soft_cross_entropy_matches_a_naive_loop():
    logits, target, weights = _random(B, P, K), _distribution(B, P, K), _random(B, P, seed=4).abs()
    naive = 0.0
    for b in range(B):
        for p in range(P):
            log_z = math.log(sum(math.exp(v) for v in logits[b, p].tolist()))
            naive += weights[b, p].item() * -sum(target[b, p, q].item() * (logits[b, p, q].item() - log_z) for q in range(K))
    assert soft_cross_entropy(logits, target, weights).item() == pytest.approx(naive / (B * P), rel=1e-5)


def test_histogram_kl_matches_a_naive_loop_and_is_zero_at_the_target():
    logits, target = _random(B, P, K), _distribution(B, P, K)
    target[0, 0] = torch.nn.functional.one_hot(torch.tensor(2), K).float()  # a one-hot row (zeros in the target)
    predicted = logits.softmax(-1)
    naive = sum(
        target[b, p, q].item() * math.log(target[b, p, q].item() / predicted[b, p, q].item())
        for b in range(B) for p in range(P) for q in range(K) if target[b, p, q] > 0
    ) / (B * P)
    assert histogram_kl(logits, target).item() == pytest.approx(naive, rel=1e-5)
    assert histogram_kl((target + 1e-12).log(), target).item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("name", ["regression", "classification", "histogram"])
def test_a_few_steps_lower_each_loss(name):
    torch.manual_seed(0)
    features = _random(B, P, 16, seed=5)
    out = {"regression": 2, "classification": K, "histogram": K}[name]
    head = torch.nn.Linear(16, out)
    target = _random(B, P, 2, seed=6) if name == "regression" else _distribution(B, P, K, seed=6)
    loss_fn = {"regression": regression_loss, "classification": soft_cross_entropy, "histogram": histogram_kl}[name]
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        loss = loss_fn(head(features), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
