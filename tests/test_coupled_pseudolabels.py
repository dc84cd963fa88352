"""The coupled baseline (pseudolabel.labels=coupled): re-clustered every epoch, exact across a resume."""

from __future__ import annotations

import signal

import pytest
import torch

from chromaproxy.checkpoint import load_checkpoint
from chromaproxy.config import load_config
from chromaproxy.engine import stopping
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.stopping import StopRequested
from chromaproxy.engine.trainer import Trainer
from conftest import REPO, tiny_overrides

COUPLED = {
    "tasks": "[rotation,pseudolabel]", "task_weights": "[1,1]", "pseudolabel.labels": "coupled", "pseudolabel.k": 5,
    "data.limit": 64, "train.batch_size": 16, "train.epochs": 3, "train.checkpoint_every": 1, "eval.test_limit": 16,
}


def _trainer(root, out, **extra) -> Trainer:
    cfg = load_config(REPO / "configs/rotation-cifar10-quick.yaml", tiny_overrides(root, out, **{**COUPLED, **extra}))
    return Trainer(cfg, open_run_dir(cfg))


def test_every_epoch_re_clusters_the_current_features_with_a_fresh_classifier(cifar_root, tmp_path, one_thread, monkeypatch):
    trainer = _trainer(cifar_root, tmp_path / "run")
    task = trainer.network.tasks["pseudolabel"]
    seen, heads = [], []
    recluster = task.recluster

    def spy(features, seed):
        heads.append(task.head[-1].weight.detach().clone())
        labels = recluster(features, seed)
        seen.append((labels, task.head[-1].weight.detach().clone()))
        return labels

    monkeypatch.setattr(task, "recluster", spy)
    trainer.fit()
    assert len(seen) == 3  # one re-clustering per epoch
    for labels, _ in seen:
        assert labels.shape == (64,) and 0 <= int(labels.min()) and int(labels.max()) < 5 and len(labels.unique()) > 1
    assert not torch.equal(seen[0][0], seen[2][0])  # the features moved, and so did the clusters
    assert not torch.equal(heads[1], seen[1][1])  # the classifier was re-initialised
    saved = load_checkpoint(tmp_path / "run/checkpoints/last.safetensors", "data.")["pseudo_labels"]
    assert torch.equal(saved, seen[2][0])


def test_a_coupled_run_resumed_mid_epoch_ends_with_the_same_weights(cifar_root, tmp_path, one_thread, monkeypatch):
    _trainer(cifar_root, tmp_path / "reference").fit()
    poll = stopping.Stopper.poll
    monkeypatch.setattr(stopping.Stopper, "poll", lambda self, step: (signal.SIGTERM, False) if step == 6 else poll(self, step))
    with pytest.raises(StopRequested):
        _trainer(cifar_root, tmp_path / "stopped").fit()
    monkeypatch.setattr(stopping.Stopper, "poll", poll)
    _trainer(cifar_root, tmp_path / "stopped", resume=True).fit()
    expected = load_checkpoint(tmp_path / "reference/checkpoints/last.safetensors", "model.")
    got = load_checkpoint(tmp_path / "stopped/checkpoints/last.safetensors", "model.")
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_coupled_pseudo_labels_refuse_a_validation_split(cifar_root, tmp_path):
    from chromaproxy.errors import UserError

    with pytest.raises(UserError, match="re-clusters the training images only; set data.val_size=0"):
        _trainer(cifar_root, tmp_path / "run", **{"data.val_size": 10})
