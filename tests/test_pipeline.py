"""``chromaproxy pipeline``: killed in a stage it resumes that stage, finished stages are skipped, and a
stage whose config changed is refused by name."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, data_root

CLUSTER = "[model.width=0.125,model.blocks=3,train.max_steps=16,train.checkpoint_every=1,iic.sub_heads=2,eval.test_limit=16,train.batch_size=16]"


def _args(out) -> list[str]:
    return [
        "pipeline", "configs/sslpp-rotation-cifar10-quick.yaml", f"out={out}", f"data.root={data_root()}",
        "data.limit=64", "model.width=0.125", "model.blocks=3", "train.epochs=3", "train.batch_size=16",
        "train.checkpoint_every=1", "eval.test_limit=32", "eval.train_limit=64", f"pipeline.cluster_overrides={CLUSTER}",
        "pipeline.eval_preset=null", "pipeline.protocols=[knn]", "knn.ks=[5]",
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], env=_env(), capture_output=True, text=True, cwd=REPO)


def _kill_when_checkpointed(args: list[str], stage_dir) -> None:
    """Start the pipeline and SIGKILL it as soon as ``stage_dir`` holds its first checkpoint."""
    process = subprocess.Popen([sys.executable, "-m", "chromaproxy", *args], env=_env(), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = stage_dir / "checkpoints" / "last.json"
    deadline = time.monotonic() + 240
    while not checkpoint.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    meta = json.loads(checkpoint.read_text())
    assert meta["step"] < meta["total_steps"], "the stage finished before the kill"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    if not (data_root() / "cifar10" / "data_batch_1").is_file():
        pytest.skip("CIFAR-10 not found (set CHROMAPROXY_DATA)")
    out = tmp_path_factory.mktemp("pipeline") / "sslpp"
    _kill_when_checkpointed(_args(out), out / "cluster")
    resumed = _cli(*_args(out))
    assert resumed.returncode == 0, resumed.stderr
    return out, resumed


def test_a_pipeline_killed_while_clustering_resumes_it_and_finishes_every_stage(pipeline):
    out, resumed = pipeline
    assert f"resumed {out / 'cluster'}" in resumed.stderr
    assert (out / "cluster" / "labels.safetensors").is_file()
    for stage in ("proxy", "sslpp"):
        assert (out / stage / "eval" / "knn.json").is_file()
    assert json.loads((out / "sslpp" / "pseudolabel.json").read_text())["labels"] == str(out / "cluster")
    report = (out / "report.md").read_text()
    assert "| tap | proxy | sslpp |" in report


def test_a_second_run_skips_every_finished_stage(pipeline):
    out, _ = pipeline
    before = {stage: (out / stage / "checkpoints" / "last.safetensors").stat().st_mtime_ns for stage in ("cluster", "proxy", "sslpp")}
    again = _cli(*_args(out))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("finished before") == 3 and again.stderr.count("evaluated before, skipped") == 2
    assert before == {stage: (out / stage / "checkpoints" / "last.safetensors").stat().st_mtime_ns for stage in before}


@pytest.mark.parametrize("change, stage, key", [
    ("train.lr=0.05", "proxy", "train.lr"),
    (f"pipeline.cluster_overrides={CLUSTER[:-1]},iic.views=2]", "cluster", "iic.views"),
])
def test_a_stage_made_with_another_config_is_refused_by_name(pipeline, change, stage, key):
    out, _ = pipeline
    result = _cli(*_args(out), change)
    assert result.returncode == 2 and f"pipeline stage {stage} in {out / stage} was run with {key}=" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_pipeline_killed_while_pretraining_resumes_it_and_evaluates_again(pipeline):
    out, _ = pipeline
    shutil.rmtree(out / "sslpp")
    _kill_when_checkpointed(_args(out), out / "sslpp")
    resumed = _cli(*_args(out))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {out / 'sslpp'}" in resumed.stderr and resumed.stderr.count("finished before") == 2
    assert "proxy: knn evaluated before, skipped" in resumed.stderr and (out / "sslpp" / "eval" / "knn.json").is_file()


def test_stage_configs_share_the_data_and_drop_only_the_pseudo_label_task(tmp_path):
    from chromaproxy.config import load_config
    from chromaproxy.engine.pipeline import stage_configs

    cfg = load_config(REPO / "configs/sslpp-rotation-cifar10-quick.yaml", [
        "data.limit=500", "seed=3", "pipeline.cluster_overrides=[train.epochs=1]", f"out={tmp_path}",
    ])
    stages = stage_configs(cfg, tmp_path)
    assert list(stages) == ["cluster", "proxy", "sslpp"]
    cluster, proxy, sslpp = stages.values()
    assert cluster.tasks == ["iic"] and cluster.data == cfg.data and cluster.seed == 3 and cluster.train.epochs == 1
    assert proxy.tasks == ["rotation"] and proxy.task_weights == [1.0] and proxy.pseudolabel.labels is None
    assert sslpp.tasks == ["rotation", "pseudolabel"] and sslpp.pseudolabel.labels == str(tmp_path / "cluster")
    assert {s.out for s in stages.values()} == {str(tmp_path / name) for name in ("cluster", "proxy", "sslpp")}
    no_baseline = stage_configs(load_config(REPO / "configs/sslpp-rotation-cifar10-quick.yaml", ["pipeline.baseline=false"]), tmp_path)
    assert list(no_baseline) == ["cluster", "sslpp"]


@pytest.mark.parametrize("overrides, epochs", [
    (["data.limit=40000"], 18 * 10_000 // 40_000),
    (["data.limit=3000"], 18 * 10_000 // 3000),
    (["data.limit=40000", "pipeline.cluster_overrides=[train.epochs=7]"], 7),
    (["data.limit=40000", "pipeline.cluster_overrides=[train.max_steps=5]"], 18),
    ([], 18),
])
def test_the_cluster_stage_sees_as_many_images_as_its_preset_unless_its_length_is_set(tmp_path, overrides, epochs):
    from rich.console import Console

    from chromaproxy.config import load_config
    from chromaproxy.engine.pipeline import stage_configs

    if not (data_root() / "cifar10" / "data_batch_1").is_file():
        pytest.skip("CIFAR-10 not found (set CHROMAPROXY_DATA)")
    preset = load_config(REPO / "configs/iic-cifar10-quick.yaml")
    assert (preset.train.epochs, preset.data.limit) == (18, 10_000), "the cases above are worked out for this preset"
    console = Console(record=True, width=200)
    cfg = load_config(REPO / "configs/sslpp-rotation-cifar10-quick.yaml", [f"data.root={data_root()}", *overrides])
    assert stage_configs(cfg, tmp_path, console)["cluster"].train.epochs == epochs
    said = console.export_text()
    rescaled = epochs != 18 and "train.epochs=7" not in str(overrides)
    assert (f"cluster: {epochs} epochs of " in said and "budget of 180,000 images seen" in said) == rescaled
