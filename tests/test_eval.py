"""Evaluation protocols: probes learn separable toys, probing never touches the backbone, results files
follow the contract, and the CLI evaluates runs and random backbones end to end."""

from __future__ import annotations

import json

import pytest
import torch

from chromaproxy.config import load_config
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.trainer import Trainer
from chromaproxy.errors import UserError
from chromaproxy.eval.cka import linear_cka
from chromaproxy.eval.cluster_metrics import ari, hungarian_accuracy, nmi
from chromaproxy.eval.evaluate import evaluate, parse_protocols, results_table
from chromaproxy.eval.probes import head_accuracy, linear_head, mlp_head, train_heads
from chromaproxy.eval.report import depth_positions, write_report
from chromaproxy.eval.results import manifest, record, write_results
from chromaproxy.eval.session import open_run
from chromaproxy.protocol_options import ProbeOptions
from conftest import REPO, tiny_overrides

QUICK_PROBES = [
    "eval.train_limit=200", "eval.test_limit=100", "knn.ks=[1,10]", "linear.epochs=2", "mlp.epochs=2",
    "conv.epochs=1", "finetune.epochs=1", "finetune.cka_images=50", "fewshot.labels_per_class=[5]", "fewshot.seeds=[0,1]",
]


def _separable(n=400, dim=8, classes=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centers = 4 * torch.randn(classes, dim, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return centers[labels] + torch.randn(n, dim, generator=generator), labels


@pytest.mark.parametrize("make_head", [lambda d, c: linear_head(d, c, True), lambda d, c: linear_head(d, c, False),
                                       lambda d, c: mlp_head(d, c, 2), lambda d, c: mlp_head(d, c, 3)])
def test_probes_learn_a_linearly_separable_toy(make_head):
    features, labels = _separable()
    torch.manual_seed(0)
    head = make_head(features.shape[1], 3)
    options = ProbeOptions(epochs=20, batch_size=64, lr=0.05)
    train_heads({"x": head}, {"x": features[:300]}, labels[:300], options, seed=0)
    assert head_accuracy(head, features[300:], labels[300:]) > 0.95


def test_cluster_metrics_are_invariant_to_cluster_names():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    renamed = torch.tensor([2, 2, 0, 0, 1, 1])
    assert hungarian_accuracy(renamed, labels) == 1.0
    assert nmi(renamed, labels) == pytest.approx(1.0) and ari(renamed, labels) == pytest.approx(1.0)
    assert hungarian_accuracy(torch.tensor([0, 0, 0, 0, 1, 1]), labels) == pytest.approx(4 / 6)


def test_linear_cka_against_known_cases():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(10, 10, generator=generator))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3 * x @ rotation) == pytest.approx(1.0)
    assert linear_cka(x, torch.randn(200, 10, generator=generator)) < 0.2


def test_unknown_protocol_names_the_closest():
    with pytest.raises(UserError, match="did you mean 'linear'"):
        parse_protocols("knn,lienar")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import data_root

    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip("CIFAR-10 not available")
    run = tmp_path_factory.mktemp("eval") / "run"
    cfg = load_config(REPO / "configs/supervised-cifar10-quick.yaml", tiny_overrides(root, run, **{"train.max_steps": 3}))
    Trainer(cfg, open_run_dir(cfg)).fit()
    return run


def _snapshot(network):
    return {k: v.clone() for k, v in network.backbone.state_dict().items()}


def test_every_protocol_leaves_the_backbone_untouched_and_writes_the_contract(tiny_run, capsys):
    from rich.console import Console

    session = open_run(tiny_run, QUICK_PROBES)
    before = _snapshot(session.network)
    names = ["knn", "linear", "mlp", "conv", "fewshot", "finetune"]
    written = evaluate(session, names, Console(file=open("/dev/null", "w")))
    after = _snapshot(session.network)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "probing changed a parameter or BN buffer"
    for name in names:
        content = json.loads(written[name].read_text())
        head = content["manifest"]
        assert {"dataset", "splits", "input", "taps", "options", "version", "date", "seed"} <= head.keys()
        assert head["splits"] == {"train": 200, "test": 100}
        for item in content["results"]:
            assert {"tap", "protocol", "metric", "value"} <= item.keys()
            assert 0.0 <= item["value"] <= 1.0 + 1e-6
    knn = json.loads(written["knn"].read_text())["results"]
    assert {(r["tap"], r["k"], r["vote"]) for r in knn} == {(t, k, v) for t in ["block1", "block2", "block3"]
                                                             for k in (1, 10) for v in ("weighted", "majority")}
    fewshot = json.loads(written["fewshot"].read_text())["results"]
    assert any(r["seed"] == "mean" and "std" in r for r in fewshot)


def test_cli_evaluate_random_and_report_side_by_side(tiny_run, tmp_path):
    import subprocess
    import sys

    from conftest import data_root

    base = [sys.executable, "-m", "chromaproxy"]
    env_root = f"data.root={data_root()}"
    quick = ["eval.train_limit=200", "eval.test_limit=100", "knn.ks=[10]"]
    random_dir = tmp_path / "random"
    result = subprocess.run(
        base + ["evaluate", "--random", str(REPO / "configs/supervised-cifar10-quick.yaml"), "--out", str(random_dir),
                "--protocol", "knn", env_root, "model.blocks=3", "model.width=0.125", *quick],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (random_dir / "config.yaml").is_file() and (random_dir / "eval/knn.json").is_file()
    result = subprocess.run(base + ["evaluate", str(tiny_run), "--protocol", "knn", *quick], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "block3" in result.stdout
    out = tmp_path / "report"
    result = subprocess.run(base + ["report", str(random_dir), str(tiny_run), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = (out / "report.md").read_text()
    assert "## knn" in text and "| block1 |" in text and "random" in text
    assert (out / "plots/depth_knn.png").stat().st_size > 1000


def test_report_names_the_headline_and_warns_on_mixed_datasets(tmp_path):
    for name, dataset in (("a", "cifar10"), ("b", "folder")):
        common = {"dataset": dataset, "splits": {"train": 10, "test": 5}}
        write_results(tmp_path / name, "knn", {**manifest("knn", common, {}), "headline": {"k": 10, "vote": "weighted"}},
                      [record("block1", "knn", "top1", 0.5, k=10, vote="weighted")])
        write_results(tmp_path / name, "colorization", {**manifest("colorization", common, {}), "headline": {"metric": "auc"}},
                      [record(None, "colorization", "auc", 0.9), record(None, "colorization", "psnr", 20.0, unit="dB")])
    path, warnings = write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "out", visuals=False)
    text = path.read_text()
    assert "## colorization (metric=auc)" in text and "| whole network | 90.00 | 90.00 |" in text
    assert "## knn (k=10, vote=weighted)" in text
    assert len(warnings) == 1 and "a: cifar10; b: folder" in warnings[0] and warnings[0] in text
    _, same = write_report([tmp_path / "a"], tmp_path / "out1", visuals=False)
    assert same == []


def test_report_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="has no eval"):
        write_report([tmp_path], tmp_path / "out")


def test_depth_plot_positions_share_ticks_for_one_backbone_and_use_relative_depth_across_backbones():
    nin = {"block1": 0.3, "block2": 0.4, None: 0.5}
    same, ticks = depth_positions({"a": nin, "b": dict(nin)})
    assert ticks == ["block1", "block2"] and same == {"a": [1.0, 2.0], "b": [1.0, 2.0]}
    resnet = {"conv1": 0.2, "layer1": 0.3, "layer2": 0.4, "layer3": 0.5}
    mixed, ticks = depth_positions({"nin": nin, "resnet": resnet})
    assert ticks is None
    assert mixed == {"nin": [0.5, 1.0], "resnet": [0.25, 0.5, 0.75, 1.0]}


def test_the_knn_terminal_table_shows_the_headline_k_with_both_votes():
    from rich.console import Console

    records = [record(tap, "knn", "top1", 0.5, k=k, vote=vote)
               for tap in ("block1", "block2") for k in (1, 10, 20) for vote in ("weighted", "majority")]
    console = Console(record=True, width=200)
    console.print(results_table("knn", records, {"k": 10, "vote": "majority"}))
    text = console.export_text()
    assert "k=10 weighted" in text and "k=10 majority" in text
    assert "k=1 " not in text and "k=20" not in text


@pytest.mark.parametrize("base", ["conv", "linear"])
def test_few_label_probes_on_a_retrained_classifier_tag_each_seed_and_summarise(tiny_run, base):
    from rich.console import Console

    session = open_run(tiny_run, QUICK_PROBES + [f"fewshot.base={base}", "fewshot.labels_per_class=[5]", "fewshot.seeds=[0,1]"])
    written = evaluate(session, ["fewshot"], Console(file=open("/dev/null", "w")))
    results = json.loads(written["fewshot"].read_text())["results"]
    assert {r["seed"] for r in results} == {0, 1, "mean"} and all(r["base"] == base for r in results)
    assert all(r["seeds"] == [0, 1] for r in results if r["seed"] == "mean")
