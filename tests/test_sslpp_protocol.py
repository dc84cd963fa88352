"""Issue 10 item 4, the SSL++ protocol exactly: presets resolve to the papers' values, both kNN votes
against a naive count, the MLP probe's flattened input, both cluster-accuracy conventions against a brute
force, max pooling for the AlexNet linear protocol, and weight decay on BatchNorm as an option."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from chromaproxy.config import load_config
from chromaproxy.eval.cluster_metrics import cluster_accuracy, hungarian_accuracy, many_to_one_accuracy
from chromaproxy.eval.evaluate import headline
from chromaproxy.eval.features import grid_side, pool
from chromaproxy.eval.knn import knn_predict
from chromaproxy.eval.probes import mlp_head
from chromaproxy.eval.protocols import PROTOCOLS
from chromaproxy.eval.session import _apply_eval_preset
from chromaproxy.optim import build_optimizer

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _eval_preset(name: str):
    cfg = load_config(None, [])
    _apply_eval_preset(cfg, CONFIGS / name)
    return cfg


def _naive_knn(train, labels, test, k, vote, temperature=0.07):
    """One query at a time: sort by (-similarity, index), count or weight the first k, ties to the lower class.
    The similarities are one matmul of the normalised features, bit-identical to knn_predict's single chunk
    (a differently blocked matmul can split mathematically equal similarities in the last bit)."""
    matrix = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T
    predictions = []
    for similarity in matrix.tolist():
        order = sorted(range(len(similarity)), key=lambda i: (-similarity[i], i))[:k]
        scores = [0.0] * (int(labels.max()) + 1)
        for i in order:
            scores[labels[i]] += 1.0 if vote == "majority" else torch.tensor(similarity[i] / temperature).exp().item()
        predictions.append(max(range(len(scores)), key=lambda c: (scores[c], -c)))
    return predictions


@pytest.mark.parametrize("vote", ["majority", "weighted"])
def test_knn_votes_match_a_naive_count_with_ties(vote):
    generator = torch.Generator().manual_seed(1)
    train = torch.randint(0, 3, (120, 4), generator=generator).double() + 0.1  # many equal similarities
    labels = torch.randint(0, 4, (120,), generator=generator)
    test = torch.randint(0, 3, (30, 4), generator=generator).double() + 0.1
    ks = [1, 3, 5, 10, 15, 20]
    ours = knn_predict(train, labels, test, ks)  # one chunk: the same similarity matrix as the reference
    for k in ks:
        assert ours[(k, vote)].tolist() == _naive_knn(train, labels, test, k, vote), k


def test_sslpp_eval_preset_is_table_ii_with_a_majority_headline():
    cfg = _eval_preset("eval-sslpp-cifar10.yaml")
    assert cfg.knn.ks == [1, 3, 5, 10, 15, 20] and cfg.knn.vote == "majority"
    conv = cfg.conv
    assert (conv.epochs, conv.batch_size, conv.lr, conv.momentum, conv.weight_decay) == (200, 128, 0.1, 0.9, 5e-4)
    assert [m * conv.epochs for m in conv.milestones] == [100, 150]
    assert cfg.fewshot.base == "conv" and cfg.fewshot.labels_per_class == [20, 100, 400, 1000]
    assert "fewshot" in cfg.eval.protocols
    assert PROTOCOLS["knn"].headline(cfg) == {"k": 10, "vote": "majority"}
    records = [{"tap": "b1", "k": 10, "vote": v, "value": x} for v, x in (("weighted", 0.5), ("majority", 0.4))]
    assert [r["value"] for r in headline("knn", records, PROTOCOLS["knn"].headline(cfg))] == [0.4]
    assert PROTOCOLS["knn"].headline(load_config(None, [])) == {"k": 10, "vote": "weighted"}  # the default stays
    assert PROTOCOLS["knn"].headline(load_config(None, ["knn.ks=[1,3]"])) == {"k": 1, "vote": "weighted"}


def test_rotnet_schedule_keeps_its_own_preset():
    conv = _eval_preset("eval-rotnet-cifar10.yaml").conv
    assert (conv.epochs, conv.gamma) == (100, 0.2)
    assert [round(m * conv.epochs) for m in conv.milestones] == [35, 70, 85]
    quick = _eval_preset("eval-sslpp-cifar10-quick.yaml")
    assert quick.conv.epochs <= 3 and quick.fewshot.seeds == [0] and quick.eval.train_limit == 10000


def _drops(train) -> list[float]:
    return [round(m * train.epochs, 6) for m in train.milestones]


@pytest.mark.parametrize("preset, optimizer, batch, lr, epochs, drops, bn_decay", [
    ("context-cifar10.yaml", "sgd", 512, 0.01, 200, [100, 150], False),
    ("rotation-cifar10.yaml", "sgd", 128, 0.1, 200, [60, 120, 160], True),
    ("aet-projective-cifar10.yaml", "sgd", 512, 0.1, 500, [240, 480], True),  # 640 lies past epoch 500
    ("aet-affine-cifar10.yaml", "sgd", 512, 0.1, 500, [240, 480], True),
    ("supervised-cifar10.yaml", "sgd", 128, 0.1, 200, [60, 120, 160], True),
])
def test_pretraining_presets_follow_sslpp_table_ii(preset, optimizer, batch, lr, epochs, drops, bn_decay):
    train = load_config(CONFIGS / preset, []).train
    assert (train.optimizer, train.batch_size, train.lr, train.epochs) == (optimizer, batch, lr, epochs)
    assert _drops(train) == drops and train.bn_weight_decay is bn_decay


@pytest.mark.parametrize("preset", ["context-cifar10-quick.yaml", "aet-projective-cifar10-quick.yaml"])
def test_quick_twins_keep_a_cpu_budget(preset):
    train = load_config(CONFIGS / preset, []).train
    assert train.epochs == 2 and train.batch_size == 128


@pytest.mark.parametrize("bn_decay", [False, True])
def test_bn_weight_decay_option_sets_the_param_groups(bn_decay):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    train = load_config(None, [f"train.bn_weight_decay={str(bn_decay).lower()}", "train.weight_decay=0.001"]).train
    groups = build_optimizer(train, model).param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.001 for p in g["params"]}
    one_d = [p for p in model.parameters() if p.ndim == 1]  # BN scale/shift, linear bias
    assert {id(p) for p in model.parameters() if p.ndim > 1} <= decayed
    assert all((id(p) in decayed) is bn_decay for p in one_d)
    assert load_config(None, []).train.bn_weight_decay is False  # the documented default stays


def test_mlp_probe_reads_the_flattened_map_with_batchnorm():
    cfg = _eval_preset("eval-sslpp-cifar10.yaml")
    side = grid_side(cfg.mlp.pooling, 192, 8)
    features = pool(torch.rand(5, 192, 8, 8), side, cfg.mlp.pooling)  # (5, 12288)
    assert features.shape == (5, 192 * 8 * 8)
    for layers in (1, 2, 3):
        head = mlp_head(features.shape[1], 10, layers, cfg.mlp.hidden, cfg.mlp.batchnorm)
        assert isinstance(head[0], torch.nn.BatchNorm1d) and head[0].num_features == 192 * 8 * 8
        assert sum(isinstance(m, torch.nn.Linear) for m in head) == layers
        assert head.train()(features).shape == (5, 10)


def test_adaptive_max_pooling_to_about_9000_features():
    side = grid_side("maxsize9000", 256, 8)  # AlexNet conv5 at CIFAR scale: 256 x 6 x 6 = 9216
    assert side == 6
    feature_map = torch.rand(2, 256, 8, 8)
    pooled = pool(feature_map, side, "maxsize9000")
    assert pooled.shape == (2, 9216)
    assert torch.equal(pool(feature_map, 1, "maxgrid1"), feature_map.amax(dim=(2, 3)))


def _brute_force_one_to_one(clusters, labels, k):
    return max(sum(int(c < k and perm[c] == y) for c, y in zip(clusters.tolist(), labels.tolist()))
               for perm in itertools.permutations(range(k))) / len(labels)


def test_cluster_accuracy_conventions_against_brute_force():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (60,), generator=generator)
    clusters = torch.where(torch.rand(60, generator=generator) < 0.6, labels, torch.randint(0, 4, (60,), generator=generator))
    assert hungarian_accuracy(clusters, labels) == pytest.approx(_brute_force_one_to_one(clusters, labels, 4))
    assert cluster_accuracy(clusters, labels, 4, 4) == (hungarian_accuracy(clusters, labels), "hungarian")
    over = torch.randint(0, 12, (60,), generator=generator)
    majority = sum(torch.bincount(labels[over == c], minlength=4).max().item() for c in range(12) if (over == c).any())
    assert many_to_one_accuracy(over, labels) == pytest.approx(majority / 60)
    value, convention = cluster_accuracy(over, labels, 12, 4)
    assert convention == "many-to-one" and value == pytest.approx(majority / 60)
    assert value >= hungarian_accuracy(over, labels)


def test_alexnet_linear_preset_max_pools_to_about_9000():
    cfg = _eval_preset("eval-alexnet-linear-cifar10.yaml")
    assert cfg.linear.pooling == "maxsize9000" and cfg.eval.protocols == ["linear"]
    for channels in (96, 256, 384):
        side = grid_side(cfg.linear.pooling, channels, 32)
        assert abs(channels * side * side - 9000) / 9000 < 0.2


def test_faiss_search_gives_the_torch_predictions():
    pytest.importorskip("faiss")
    generator = torch.Generator().manual_seed(3)
    train = torch.randn(3000, 24, generator=generator).relu()
    train[100:110] = train[0]  # exact ties, at and inside the cut
    labels = torch.randint(0, 5, (3000,), generator=generator)
    test = torch.cat([train[:4], torch.randn(200, 24, generator=generator).relu()])
    ks = [1, 3, 5, 10, 15, 20, 200]
    ours, reference = (knn_predict(train, labels, test, ks, chunk=64, backend=b) for b in ("faiss", "torch"))
    assert all(torch.equal(ours[key], reference[key]) for key in reference)
