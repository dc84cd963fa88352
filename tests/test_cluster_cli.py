"""``chromaproxy cluster`` end to end, and the pseudolabel task reading what it wrote (SSL++'s pipeline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, data_root, tiny_overrides

TINY_IIC = ["train.max_steps=3", "iic.sub_heads=2", "eval.test_limit=32", "data.limit=128"]


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], env=env, capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip(f"CIFAR-10 not found under {root} (set CHROMAPROXY_DATA)")
    run = tmp_path_factory.mktemp("iic") / "run"
    result = _cli("cluster", "configs/iic-cifar10-quick.yaml", *tiny_overrides(root, run), *TINY_IIC)
    assert result.returncode == 0, result.stderr
    return run, result.stdout


def test_cluster_writes_one_id_per_training_image_with_its_manifest_and_scores(clustered):
    run, stdout = clustered
    tensors = load_file(str(run / "labels.safetensors"))
    assert tensors["overcluster.clusters"].shape == (128,) and tensors["clusters.clusters"].shape == (128,)
    assert tensors["overcluster.soft"].shape == (128, 70) and tensors["clusters.soft"].shape == (128, 10)
    assert torch.equal(tensors["clusters.soft"].argmax(1), tensors["clusters.clusters"])
    assert torch.allclose(tensors["clusters.soft"].sum(1), torch.ones(128), atol=1e-5)
    manifest = json.loads((run / "labels.json").read_text())
    assert manifest["images"] == 128 and manifest["dataset"] == "cifar10" and manifest["split"] == "train"
    scores = json.loads((run / "clusters.json").read_text())
    for head, k in (("overcluster", 70), ("clusters", 10)):
        assert scores[head]["k"] == k and 1 <= scores[head]["used"] <= k
        assert 0 < scores[head]["hungarian"] <= scores[head]["many_to_one"] <= 1  # many-to-one is never stricter
        assert 0 <= scores[head]["sub_head"] < 2
    assert "acc 1:1" in stdout and "wrote" in stdout


def test_pretrain_with_pseudo_labels_from_the_cluster_run(clustered, tmp_path):
    run, _ = clustered
    out = tmp_path / "sslpp"
    result = _cli(
        "pretrain", "configs/rotation-cifar10-quick.yaml", *tiny_overrides(data_root(), out), "data.limit=128",
        "tasks=[rotation,pseudolabel]", "task_weights=[1,0.05]", f"pseudolabel.labels={run}", "data.val_size=20",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("pseudolabel/loss" in r and r.get("split") == "val" for r in records)
    assert json.loads((out / "pseudolabel.json").read_text())["k"] == 70


@pytest.mark.parametrize("change, message", [
    (["data.limit=64"], "was made for images 128, this run trains on 64 (use the same data.limit)"),
    (["data.name=cifar100", f"data.path={data_root() / 'cifar100_subset'}", "data.limit=128"],
     "was made for dataset 'cifar10', this run trains on 'cifar100'"),
])
def test_a_labels_file_for_other_images_is_a_one_line_error(clustered, tmp_path, change, message):
    run, _ = clustered
    result = _cli(
        "pretrain", "configs/rotation-cifar10-quick.yaml", *tiny_overrides(data_root(), tmp_path / "x"),
        "tasks=[rotation,pseudolabel]", "task_weights=[1,0.05]", f"pseudolabel.labels={run}", *change,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and not (tmp_path / "x").exists()


def test_a_checkpoint_is_not_a_labels_file(clustered, tmp_path):
    run, _ = clustered
    result = _cli(
        "pretrain", "configs/rotation-cifar10-quick.yaml", *tiny_overrides(data_root(), tmp_path / "x"),
        "tasks=[rotation,pseudolabel]", "task_weights=[1,0.05]", f"pseudolabel.labels={run}/checkpoints/last.safetensors",
    )
    assert result.returncode == 2 and "is not a chromaproxy labels file" in result.stderr


def test_cluster_refuses_a_config_that_does_not_train_iic(tmp_path):
    result = _cli("cluster", "configs/rotation-cifar10-quick.yaml", f"out={tmp_path / 'r'}")
    assert result.returncode == 2 and "chromaproxy cluster trains tasks=[iic]" in result.stderr


def test_kmeans_of_a_trained_run_gives_a_labels_file_the_pseudolabel_task_reads(clustered, tmp_path):
    run, _ = clustered
    result = _cli("kmeans", run, "--tap", "block2", "--k", "6", "--out", tmp_path / "km")
    assert result.returncode == 0, result.stderr
    tensors = load_file(str(tmp_path / "km" / "labels.safetensors"))
    assert tensors["kmeans.clusters"].shape == (128,) and int(tensors["kmeans.clusters"].max()) < 6
    assert json.loads((tmp_path / "km" / "clusters.json").read_text())["kmeans"]["k"] == 6
    out = tmp_path / "sslpp"
    result = _cli(
        "pretrain", "configs/rotation-cifar10-quick.yaml", *tiny_overrides(data_root(), out), "data.limit=128",
        "tasks=[rotation,pseudolabel]", "task_weights=[1,0.05]", f"pseudolabel.labels={tmp_path / 'km'}",
        "pseudolabel.head=kmeans", "train.epochs=1",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "pseudolabel.json").read_text())["k"] == 6
