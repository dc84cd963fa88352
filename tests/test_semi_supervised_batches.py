"""Mixed runs (supervised + proxy task, few labels): a batch with no labeled image is a zero loss, not NaN."""

import json

import torch

from chromaproxy.config import load_config
from chromaproxy.data.types import UNLABELED
from chromaproxy.engine.distributed import Dist
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.trainer import Trainer, _Window
from chromaproxy.models import build_backbone
from chromaproxy.tasks.base import TaskContext
from chromaproxy.tasks.supervised import SupervisedOptions, SupervisedTask
from conftest import REPO, tiny_overrides


def test_supervised_loss_on_an_unlabeled_batch_is_exactly_zero_with_zero_gradient():
    backbone = build_backbone("nin", in_channels=3, width=0.25, blocks=3)
    task = SupervisedTask(SupervisedOptions(), TaskContext(backbone, 10))
    features = {task.taps[0]: torch.randn(4, backbone.tap_info(task.taps[0]).channels, 8, 8, requires_grad=True)}
    out = task(features, torch.full((4,), UNLABELED))
    out["loss"].backward()
    assert out["loss"].item() == 0.0 and out["acc"].isnan()
    assert features[task.taps[0]].grad.abs().sum() == 0


def test_supervised_loss_averages_over_labeled_images_only():
    backbone = build_backbone("nin", in_channels=3, width=0.25, blocks=3)
    task = SupervisedTask(SupervisedOptions(), TaskContext(backbone, 10))
    features = {task.taps[0]: torch.randn(4, backbone.tap_info(task.taps[0]).channels, 8, 8)}
    labels = torch.tensor([3, UNLABELED, 7, UNLABELED])
    logits = task.head(features[task.taps[0]])
    naive = torch.nn.functional.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    assert torch.allclose(task(features, labels)["loss"], naive)


def test_window_skips_unmeasured_metrics_but_never_the_loss():
    window = _Window()
    window.add({"loss": torch.tensor(1.0), "supervised/acc": torch.tensor(float("nan"))}, 10)
    assert window.means(Dist()) == {"loss": 1.0}
    window.add({"loss": torch.tensor(3.0), "supervised/acc": torch.tensor(0.5)}, 10)
    assert window.means(Dist()) == {"loss": 2.0, "supervised/acc": 0.5}
    window.add({"loss": torch.tensor(float("nan")), "supervised/acc": torch.tensor(0.5)}, 10)
    assert torch.isnan(torch.tensor(window.means(Dist())["loss"]))


def test_one_label_per_class_with_rotation_trains_without_nan(cifar_root, tmp_path):
    overrides = tiny_overrides(cifar_root, tmp_path / "run", **{
        "tasks": "[supervised,rotation]", "task_weights": "[1,1]", "data.labels_per_class": 1,
        "train.max_steps": 6, "train.log_every": 1,
    })
    cfg = load_config(REPO / "configs/supervised-cifar10-quick.yaml", overrides)
    Trainer(cfg, open_run_dir(cfg)).fit()
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "split" not in r]
    assert all(r["loss"] == r["loss"] for r in steps)
    assert any("supervised/acc" not in r for r in steps)
