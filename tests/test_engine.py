"""End-to-end behaviour of the training engine on tiny real CIFAR-10 runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from chromaproxy import checkpoint
from chromaproxy.checkpoint import load_checkpoint, read_meta, save_checkpoint
from chromaproxy.config import load_config
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.trainer import Trainer, TrainingDiverged
from chromaproxy.errors import UserError
from chromaproxy.network import load_weights
from chromaproxy.tasks import TASKS
from chromaproxy.tasks.supervised import SupervisedTask
from conftest import REPO, TASK_REQUIRED, tiny_overrides


def _trainer(root, out, **extra):
    cfg = load_config(REPO / "configs/supervised-cifar10-quick.yaml", tiny_overrides(root, out, **extra))
    return Trainer(cfg, open_run_dir(cfg))


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_the_loss_and_writes_a_complete_run(cifar_root, tmp_path):
    run = tmp_path / "run"
    trainer = _trainer(cifar_root, run, **{"train.epochs": 6, "train.log_every": 8, "data.val_size": 64, "train.lr": 0.05,
                                           "train.tensorboard": True})
    test = trainer.fit()
    for name in ["config.yaml", "splits.json", "metrics.jsonl", "checkpoints/last.safetensors",
                 "checkpoints/last.json", "checkpoints/best.safetensors"]:
        assert (run / name).is_file(), name
    train = [r for r in _records(run) if "split" not in r]
    assert train[-1]["loss"] < train[0]["loss"]
    assert {"val", "test"} <= {r.get("split") for r in _records(run)}
    assert 0.0 <= test["supervised/acc"] <= 1.0 and len(json.loads((run / "splits.json").read_text())["val"]) == 64
    assert read_meta(run / "checkpoints/last.safetensors")["step"] == trainer.total_steps
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def _pretrain(root, out, *extra):
    env = {**os.environ, "CHROMAPROXY_DATA": str(root), "OMP_NUM_THREADS": "1"}
    args = tiny_overrides(root, out, **{"train.max_steps": 40, "train.checkpoint_every": 5, "train.log_every": 5,
                                        "train.ema": 0.9})  # the Polyak average must resume exactly too
    command = [sys.executable, "-m", "chromaproxy", "pretrain", str(REPO / "configs/supervised-cifar10-quick.yaml"), *args, *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _model_weights(run):
    """The training weights (``model.*``) and their Polyak average (``ema.*``)."""
    path = run / "checkpoints/last.safetensors"
    return {**load_checkpoint(path, "model."), **{f"ema.{k}": v for k, v in load_checkpoint(path, "ema.").items()}}


def test_resume_after_kill_is_bit_exact(cifar_root, tmp_path):
    reference = _pretrain(cifar_root, tmp_path / "reference")
    assert reference.wait(timeout=300) == 0, reference.stderr.read()

    killed = _pretrain(cifar_root, tmp_path / "killed")
    last = tmp_path / "killed/checkpoints/last.json"
    while not last.exists() and killed.poll() is None:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    stopped_at = json.loads(last.read_text())["step"]
    assert 0 < stopped_at < 40

    resumed = _pretrain(cifar_root, tmp_path / "killed", "resume=true")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    expected, got = _model_weights(tmp_path / "reference"), _model_weights(tmp_path / "killed")
    assert expected.keys() == got.keys() and any(k.startswith("ema.") for k in expected)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    steps = [r["step"] for r in _records(tmp_path / "killed") if "split" not in r]
    assert steps == sorted(set(steps)), "metrics.jsonl must not repeat steps after a resume"


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(cifar_root, tmp_path, monkeypatch):
    original = SupervisedTask.forward
    calls = {"n": 0}

    def poisoned(self, features, labels):
        calls["n"] += 1
        out = original(self, features, labels)
        return {**out, "loss": out["loss"] * float("nan")} if calls["n"] > 4 else out

    monkeypatch.setattr(SupervisedTask, "forward", poisoned)
    run = tmp_path / "run"
    trainer = _trainer(cifar_root, run, **{"train.checkpoint_every": 2, "train.log_every": 1})
    with pytest.raises(TrainingDiverged, match="the supervised loss became nan at step 5"):
        trainer.fit()
    meta = read_meta(run / "checkpoints/last.safetensors")
    assert meta["step"] == 4
    weights = load_checkpoint(run / "checkpoints/last.safetensors", "model.")
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def _disk_vanishes(src, dst):
    raise OSError("disk vanished")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"model.w": torch.ones(3)}, {"step": 1})
    monkeypatch.setattr(checkpoint.os, "replace", _disk_vanishes)
    with pytest.raises(OSError):
        save_checkpoint(path, {"model.w": torch.zeros(3)}, {"step": 2})
    assert read_meta(path)["step"] == 1
    assert torch.equal(load_checkpoint(path, "model.")["w"], torch.ones(3))


def test_every_other_safetensors_file_is_written_the_same_way(tmp_path, monkeypatch):
    """Mined patches and graphs, a colour prior, a cue network: a crash before the rename leaves no file at
    the final name (a torn one there would be read by the next command), and the old file stays intact."""
    from chromaproxy.color.rebalance import load_prior, save_prior
    from chromaproxy.segment.camnet import WEIGHTS, CamNetwork, save_cam_network
    from chromaproxy.video.mine import PATCHES, save_patches

    save_prior(tmp_path / "prior.safetensors", torch.zeros(3, 2), torch.full((3,), 1 / 3), torch.ones(3))
    monkeypatch.setattr(checkpoint.os, "replace", _disk_vanishes)
    with pytest.raises(OSError):
        save_patches(tmp_path / "mined", {"patches": torch.zeros(2, 3, 4, 4, dtype=torch.uint8)}, {})
    assert not (tmp_path / "mined" / PATCHES).exists()
    with pytest.raises(OSError):
        save_cam_network(CamNetwork(3, width=4), tmp_path / "cues", "pets3", ["background", "a", "b"])
    assert not (tmp_path / "cues" / WEIGHTS).exists()
    with pytest.raises(OSError):
        save_prior(tmp_path / "prior.safetensors", torch.ones(3, 2), torch.full((3,), 1 / 3), torch.ones(3))
    assert torch.equal(load_prior(tmp_path / "prior.safetensors").centers, torch.zeros(3, 2))


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "last.safetensors"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="not a readable safetensors checkpoint"):
        read_meta(path)


def test_checkpoint_of_another_model_is_refused(cifar_root, tmp_path):
    small = _trainer(cifar_root, tmp_path / "a")
    small._save_last()
    wide = _trainer(cifar_root, tmp_path / "b", **{"model.width": 0.25})
    path = tmp_path / "a/checkpoints/last.safetensors"
    with pytest.raises(UserError, match="does not fit this model"):
        load_weights(wide.network, load_checkpoint(path, "model."), path)


def test_existing_run_is_never_overwritten_and_resume_checks_the_config(cifar_root, tmp_path):
    run = tmp_path / "run"
    _trainer(cifar_root, run, **{"train.max_steps": 2}).fit()
    with pytest.raises(UserError, match="already exists; add resume=true"):
        _trainer(cifar_root, run)
    with pytest.raises(UserError, match="cannot resume .* train.lr was 0.1, now 0.5"):
        _trainer(cifar_root, run, **{"train.max_steps": 2, "train.lr": 0.5, "resume": True})


def test_multi_task_run_logs_each_task(cifar_root, tmp_path):
    run = tmp_path / "run"
    trainer = _trainer(cifar_root, run, **{
        "tasks": "[rotation,colorization]", "task_weights": "[1,0.5]", "model.input": "L", "train.max_steps": 3,
        "train.log_every": 1, "colorization.points": 8, "colorization.hidden": 16, "colorization.prior_images": 256,
    })
    trainer.fit()
    record = next(r for r in _records(run) if "split" not in r)
    assert {"rotation/loss", "rotation/acc", "colorization/loss", "colorization/bin_acc"} <= record.keys()
    assert record["loss"] == pytest.approx(record["rotation/loss"] + 0.5 * record["colorization/loss"], rel=1e-5)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_trains_in_the_engine(cifar_root, tmp_path, task):
    run = tmp_path / "run"
    overrides = {"tasks": f"[{task}]", "model.input": TASKS[task].inputs[0], "train.max_steps": 2, "train.log_every": 1,
                 **TASK_REQUIRED.get(task, {})}
    _trainer(cifar_root, run, **overrides).fit()
    records = [r for r in _records(run) if "split" not in r]
    assert len(records) == 2 and f"{task}/loss" in records[0]
    assert read_meta(run / "checkpoints/last.safetensors")["tasks"] == [task]
