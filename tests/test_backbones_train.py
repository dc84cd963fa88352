"""Every registered backbone trains through the engine: a multi-task step (rotation on the deepest tap,
colorization hypercolumns over every tap) that changes the weights, and a reloadable checkpoint.

The 224 px backbones run here at 32 px, which their arithmetic allows; their own size is covered by the
contract test. One backbone also runs through the command line, as a user would start it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from chromaproxy.checkpoint import load_checkpoint
from chromaproxy.config import load_config
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.trainer import Trainer
from chromaproxy.models import BACKBONES
from chromaproxy.network import load_network
from conftest import REPO

PRESET = REPO / "configs" / "rotation-cifar10-quick.yaml"


def overrides(root, out, name: str) -> list[str]:
    return [
        f"data.root={root}", "data.limit=32", f"model.name={name}", "model.width=0.125", "model.input=L",
        "tasks=[rotation,colorization]", "task_weights=[1,1]", "colorization.prior_images=32",
        "train.batch_size=8", "train.max_steps=2", "eval.test_limit=8", f"out={out}",
    ]


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_trains_with_two_tasks_and_reloads(cifar_root, tmp_path, name, one_thread):
    cfg = load_config(PRESET, overrides(cifar_root, tmp_path / "run", name))
    trainer = Trainer(cfg, open_run_dir(cfg))
    before = {k: v.clone() for k, v in trainer.network.backbone.state_dict().items()}
    test = trainer.fit()
    assert all(torch.isfinite(torch.tensor(v)) for v in test.values())
    after = trainer.network.backbone.state_dict()
    if before:  # the identity backbone 'pixels' has no weights; its heads still train and reload below
        assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    _, network = load_network(tmp_path / "run")
    saved = load_checkpoint(tmp_path / "run/checkpoints/last.safetensors", "model.")
    assert all(torch.equal(network.state_dict()[k], saved[k]) for k in saved)


def test_a_new_backbone_from_the_command_line(cifar_root, tmp_path):
    args = [a for a in overrides(cifar_root, tmp_path / "run", "resnet18") if not a.startswith("train.max_steps")]
    command = [sys.executable, "-m", "chromaproxy", "pretrain", str(PRESET), *args, "train.epochs=1"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "done:" in result.stdout
