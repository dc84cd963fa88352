import pytest
import torch

from chromaproxy.checkpoint import optimizer_tensors, restore_optimizer
from chromaproxy.config import load_config
from chromaproxy.optim import build_optimizer, lr_at


def test_multistep_milestones_are_fractions_of_the_run():
    train = load_config(None, ["train.lr=0.1", "train.milestones=[0.3,0.6,0.8]", "train.gamma=0.2"]).train
    lrs = [lr_at(train, step, 200) for step in (0, 59, 60, 119, 120, 160, 199)]
    assert lrs == pytest.approx([0.1, 0.1, 0.02, 0.02, 0.004, 0.0008, 0.0008])


def test_warmup_then_cosine():
    train = load_config(None, ["train.schedule=cosine", "train.warmup=0.1", "train.lr=1.0"]).train
    assert lr_at(train, 0, 100) == pytest.approx(0.1)
    assert lr_at(train, 9, 100) == pytest.approx(1.0)
    assert lr_at(train, 10, 100) == pytest.approx(1.0)
    assert lr_at(train, 55, 100) == pytest.approx(0.5)
    assert lr_at(train, 99, 100) < 0.001


def test_exponential_decay_per_step_after_warmup():
    train = load_config(None, ["train.schedule=exponential", "train.decay_per_step=0.99", "train.lr=1.0",
                               "train.warmup=0.1"]).train
    assert lr_at(train, 9, 100) == pytest.approx(1.0)
    assert lr_at(train, 10, 100) == pytest.approx(1.0)
    assert lr_at(train, 60, 100) == pytest.approx(0.99**50)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizer_state_round_trips_through_tensors(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    train = load_config(None, [f"train.optimizer={name}"]).train
    optimizer = build_optimizer(train, model)
    model(torch.randn(8, 4)).square().mean().backward()
    optimizer.step()
    tensors, groups = optimizer_tensors(optimizer)
    assert groups[1]["weight_decay"] == 0.0  # BatchNorm and biases are not decayed
    other = build_optimizer(train, model)
    restore_optimizer(other, {k.removeprefix("optim."): v for k, v in tensors.items()}, groups)
    for a, b in zip(optimizer.state.values(), other.state.values()):
        for key in a:
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key]))
