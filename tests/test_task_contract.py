"""The task contract, checked on every registered task: adding a task to TASKS adds it here.

Each task, in a network of its own (its first supported input, NIN-3 at width 0.25, 32 px images):
``make_batch`` is a pure function of its generator, the loss is a finite scalar with a gradient that
reaches the backbone, metrics are detached, an optimiser step on a fixed batch lowers the loss, and the
network saves and reloads to identical outputs.
"""

import pytest
import torch
from safetensors.torch import load_file, save_file

from chromaproxy.config import load_config
from chromaproxy.data.types import ImageSet
from chromaproxy.network import Network
from chromaproxy.tasks import TASKS
from conftest import TASK_REQUIRED

torch.manual_seed(0)
IMAGES = ImageSet(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), torch.arange(64) % 10, [str(i) for i in range(10)])


def _network(name: str, tmp_path) -> Network:
    cfg = load_config(None, [
        f"tasks=[{name}]", "task_weights=[1]", f"model.input={TASKS[name].inputs[0]}",
        "model.width=0.25", "model.blocks=3", *(f"{k}={v}" for k, v in TASK_REQUIRED.get(name, {}).items()),
    ])
    torch.manual_seed(0)
    return Network.from_config(cfg, num_classes=10, images=IMAGES, run=tmp_path)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    return IMAGES.images[:16].float() / 255, IMAGES.labels[:16]


@pytest.fixture(params=sorted(TASKS))
def name(request, one_thread):
    return request.param


def test_make_batch_is_a_pure_function_of_its_generator(name, tmp_path):
    task = _network(name, tmp_path).tasks[name]
    rgb, labels = _batch()
    before = torch.get_rng_state()
    first = task.make_batch(rgb, labels, torch.Generator().manual_seed(3))
    second = task.make_batch(rgb, labels, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), before)
    for a, b in zip(torch.utils._pytree.tree_leaves(first), torch.utils._pytree.tree_leaves(second)):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_loss_is_finite_reaches_the_backbone_and_metrics_are_detached(name, tmp_path):
    """An image model (``reads_backbone`` False) trains its own networks: its gradient must reach them."""
    network = _network(name, tmp_path).train()
    out = network.task_outputs(name, *network.tasks[name].make_batch(*_batch(), torch.Generator().manual_seed(0)))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert all(not value.requires_grad for key, value in out.items() if key != "loss")
    out["loss"].backward()
    trained = network.backbone if network.tasks[name].reads_backbone else network.tasks[name]
    first_conv = next(p for p in trained.parameters() if p.ndim == 4)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


def test_one_optimiser_step_on_a_fixed_batch_lowers_the_loss(name, tmp_path):
    network = _network(name, tmp_path).train()
    inputs, targets = network.tasks[name].make_batch(*_batch(), torch.Generator().manual_seed(0))
    optimiser = torch.optim.SGD(network.parameters(), lr=0.01)
    losses = []
    for _ in range(2):
        torch.manual_seed(1)  # the same dropout draws, if any, in both passes
        loss = network.task_outputs(name, inputs, targets)["loss"]
        losses.append(loss.item())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert losses[1] < losses[0]


def test_save_and_reload_gives_identical_outputs(name, tmp_path):
    network = _network(name, tmp_path).eval()
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(tmp_path / "weights.safetensors"))
    again = _network(name, tmp_path)
    again.load_state_dict(load_file(str(tmp_path / "weights.safetensors")))
    inputs, targets = network.tasks[name].make_batch(*_batch(), torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = network.task_outputs(name, inputs, targets), again.eval().task_outputs(name, inputs, targets)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_task_named_like_a_config_section_is_refused_at_import(monkeypatch):
    from chromaproxy import config

    config._check_section_names()
    monkeypatch.setattr(config, "TASKS", {**TASKS, "train": TASKS["rotation"]})
    with pytest.raises(ImportError, match="'train' is already a config section"):
        config._check_section_names()
