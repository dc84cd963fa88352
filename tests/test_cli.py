"""The command line as a user types it: one-line errors, helpful --help, a working tiny pretrain."""

from __future__ import annotations

import os
import subprocess
import sys

from chromaproxy import __version__
from conftest import REPO, tiny_overrides


def _cli(*args, root=None):
    env = dict(os.environ)
    if root is not None:
        env["CHROMAPROXY_DATA"] = str(root)
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], env=env, capture_output=True, text=True)


def test_version():
    result = _cli("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_data_info_advises_its_own_skip_flag(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "broken.png").write_text("not an image")
    result = _cli("data", "info", "folder", "--path", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pass --skip-bad" in result.stderr and "data.skip_bad" not in result.stderr


def test_unknown_key_is_one_line_without_traceback():
    result = _cli("pretrain", REPO / "configs/supervised-cifar10-quick.yaml", "train.lrr=0.1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "did you mean 'train.lr'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_config_file():
    result = _cli("pretrain", "configs/nope.yaml")
    assert result.returncode == 2 and "config file not found" in result.stderr


def test_dry_run_prints_the_resolved_config():
    result = _cli("pretrain", REPO / "configs/supervised-cifar10-quick.yaml", "--dry-run", "train.lr=0.01")
    assert result.returncode == 0
    assert "lr: 0.01" in result.stdout and "width: 0.5" in result.stdout


def test_tiny_pretrain_end_to_end(cifar_root, tmp_path):
    run = tmp_path / "run"
    result = _cli("pretrain", REPO / "configs/supervised-cifar10-quick.yaml",
                  *tiny_overrides(cifar_root, run, **{"train.max_steps": 4}), root=cifar_root)
    assert result.returncode == 0, result.stderr
    assert "supervised/acc" in result.stdout and (run / "checkpoints/last.safetensors").is_file()


def test_data_info_cifar10(cifar_root):
    result = _cli("data", "info", "cifar10", root=cifar_root)
    assert result.returncode == 0, result.stderr
    assert "50000" in result.stdout and "10000" in result.stdout and "integrity: ok" in result.stdout


def test_pretrain_on_an_image_folder(tmp_path):
    from PIL import Image

    for split, count in (("train", 24), ("test", 8)):
        for index in range(count):
            name = ("cats", "dogs")[index % 2]
            folder = tmp_path / "photos" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            colour = (200, 40 + index, 40) if name == "cats" else (40, 40 + index, 200)
            Image.new("RGB", (48, 40), colour).save(folder / f"{index}.png")
    run = tmp_path / "run"
    result = _cli("pretrain", REPO / "configs/supervised-cifar10-quick.yaml", "data.name=folder",
                  f"data.path={tmp_path / 'photos'}", "data.image_size=24", "model.blocks=3", "model.width=0.125",
                  "train.batch_size=8", "train.max_steps=3", f"out={run}")
    assert result.returncode == 0, result.stderr
    assert "supervised/acc" in result.stdout and (run / "checkpoints/last.safetensors").is_file()
