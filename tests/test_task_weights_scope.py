"""``task_weights_scope``: a task weight scales the whole loss, or only the gradient reaching the backbone."""

from __future__ import annotations

import pytest
import torch

from chromaproxy.config import load_config
from chromaproxy.network import Network

WEIGHT = 0.05


@pytest.fixture(autouse=True)
def _fp32(monkeypatch):
    """Exact arithmetic: under bf16 autocast the two scopes round differently."""
    monkeypatch.setenv("CHROMAPROXY_PRECISION", "fp32")


def _gradients(scope: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    cfg = load_config(None, ["model.name=nin", "model.width=0.25", "model.blocks=3", "tasks=[rotation,supervised]",
                             f"task_weights=[1,{WEIGHT}]", f"task_weights_scope={scope}"])
    torch.manual_seed(0)
    network = Network.from_config(cfg, num_classes=10)
    rgb, labels = torch.rand(6, 3, 32, 32), torch.arange(6) % 10
    outputs = network(rgb, labels, torch.Generator().manual_seed(1))
    outputs["loss"].backward()
    grads = {name: p.grad.clone() for name, p in network.named_parameters() if p.grad is not None}
    return grads, outputs


def test_backbone_scope_gives_the_backbone_the_weighted_gradient_and_the_head_its_own():
    by_loss, loss_out = _gradients("loss")
    at_taps, taps_out = _gradients("backbone")
    assert by_loss.keys() == at_taps.keys()
    backbone = [name for name in by_loss if name.startswith("backbone.")]
    weighted_head = [name for name in by_loss if name.startswith("tasks.supervised.")]
    assert backbone and weighted_head
    for name in backbone + [n for n in by_loss if n.startswith("tasks.rotation.")]:
        torch.testing.assert_close(at_taps[name], by_loss[name], rtol=1e-4, atol=1e-6)
    for name in weighted_head:
        torch.testing.assert_close(at_taps[name], by_loss[name] / WEIGHT, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(taps_out["loss"], taps_out["rotation/loss"] + taps_out["supervised/loss"])
    torch.testing.assert_close(loss_out["loss"], loss_out["rotation/loss"] + WEIGHT * loss_out["supervised/loss"])
