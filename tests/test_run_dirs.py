"""No run folder is a dead end: a failure before training leaves nothing, a folder without a checkpoint counts
as not started (a new run reuses it, resume=true starts it from step 0), and every message's command works."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chromaproxy.config import load_config
from chromaproxy.engine.run_dir import plan_run_dir
from chromaproxy.errors import UserError
from conftest import REPO, tiny_overrides

PRESET = REPO / "configs/supervised-cifar10-quick.yaml"


def _pretrain(root, out, *extra):
    env = {**os.environ, "CHROMAPROXY_DATA": str(root), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "chromaproxy", "pretrain", str(PRESET), *tiny_overrides(root, out), *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("bad", ["data.image_size=64", "model.name=resnet99", "data.labels_per_class=0"])
def test_a_run_that_fails_before_training_leaves_no_folder(cifar_root, tmp_path, bad):
    run = tmp_path / "run"
    result = _pretrain(cifar_root, run, bad)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not run.exists(), sorted(p.name for p in run.iterdir())


def test_supervised_on_an_unlabeled_folder_leaves_no_folder(tmp_path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32), (i * 60, 10, 10)).save(images / f"{i}.png")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "chromaproxy", "pretrain", str(PRESET), "data.name=folder",
               f"data.path={images}", f"out={run}", "train.max_steps=1"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2 and "label" in result.stderr, result.stderr
    assert not run.exists()


def _leftover(tmp_path):
    """What a run killed before its first checkpoint leaves: its config and an empty checkpoints/."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "metrics.jsonl").write_text('{"step": 3, "loss": 9.0}\n')
    return run


def test_a_folder_without_checkpoint_is_reused_by_a_new_run(cifar_root, tmp_path):
    run = _leftover(tmp_path)
    cfg = load_config(PRESET, tiny_overrides(cifar_root, run))
    planned, note = plan_run_dir(cfg)
    assert planned == run and "holds no checkpoint yet" in note and "starting it from step 0" in note

    result = _pretrain(cifar_root, run, "train.max_steps=2")
    assert result.returncode == 0, result.stderr
    assert "holds no checkpoint yet" in result.stderr
    assert (run / "checkpoints/last.safetensors").is_file()
    assert '"loss": 9.0' not in (run / "metrics.jsonl").read_text(), "the stale log of the failed run is kept"


def test_resume_of_a_folder_without_checkpoint_starts_it(cifar_root, tmp_path):
    run = _leftover(tmp_path)
    result = _pretrain(cifar_root, run, "train.max_steps=2", "resume=true")
    assert result.returncode == 0, result.stderr
    assert "starting it from step 0" in result.stderr and (run / "checkpoints/last.safetensors").is_file()


def test_a_folder_that_is_not_a_run_is_refused(cifar_root, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    cfg = load_config(PRESET, tiny_overrides(cifar_root, tmp_path))
    with pytest.raises(UserError, match="is not a run directory .* choose another out=DIR"):
        plan_run_dir(cfg)


def test_resume_of_a_missing_folder_names_the_path(cifar_root, tmp_path):
    cfg = load_config(PRESET, tiny_overrides(cifar_root, tmp_path / "typo") + ["resume=true"])
    with pytest.raises(UserError, match="nothing to resume: .*typo does not exist"):
        plan_run_dir(cfg)
