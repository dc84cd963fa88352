"""The trained network: input representation → shared backbone → one head per task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from chromaproxy.data.types import ImageSet
from chromaproxy.engine.device import autocast, memory_format
from chromaproxy.errors import UserError
from chromaproxy.models import build_backbone
from chromaproxy.models.inputs import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, ModelInput, input_channels
from chromaproxy.tasks import TASKS, TaskContext

_CIFAR100_STATS = ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255))
# Per-dataset input normalisation (mean, std) of the train split, for model.input=rgb. Any other source
# (image folders) is normalised with the ImageNet statistics.
_DATASET_STATS = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": _CIFAR100_STATS,
    "cifar100-20": _CIFAR100_STATS,
    "stl10": ((113.9 / 255, 112.2 / 255, 103.7 / 255), (66.4 / 255, 65.4 / 255, 69.2 / 255)),
    "svhn": ((111.6 / 255, 113.2 / 255, 120.6 / 255), (50.5 / 255, 51.3 / 255, 50.2 / 255)),
}


def model_description(cfg: Any) -> dict[str, Any]:
    """What a checkpoint must match to be loaded into this network (stored in its metadata)."""
    model = cfg.model
    return {"name": model.name, "width": model.width, "blocks": model.blocks, "input": model.input}


def check_model(meta: dict[str, Any], cfg: Any, path: Path) -> None:
    """A checkpoint's model description must match the config it is loaded into."""
    if meta["model"] != model_description(cfg):
        raise UserError(f"{path} holds model {meta['model']}, not {model_description(cfg)}; load it with the config of the run it came from")


def build_input(cfg: Any) -> ModelInput:
    mean, std = _DATASET_STATS.get(cfg.data.name, (IMAGENET_MEAN, IMAGENET_STD))
    return ModelInput(cfg.model.input, mean=mean, std=std)


class Network(nn.Module):
    """Holds the parts a run trains; state-dict keys are ``backbone.*`` and ``tasks.<name>.*``."""

    def __init__(self, cfg: Any, num_classes: int, images: ImageSet | None = None, run: Path | None = None) -> None:
        super().__init__()
        model = cfg.model
        self.input = build_input(cfg)
        self.backbone = build_backbone(
            model.name, in_channels=input_channels(model.input), width=model.width, blocks=model.blocks
        )
        context = TaskContext(self.backbone, num_classes, images=images, run=run)
        self.tasks = nn.ModuleDict({name: _build_task(name, cfg, context) for name in cfg.tasks})

        self.task_weights = dict(zip(cfg.tasks, cfg.task_weights))

    def task_outputs(self, name: str, inputs: torch.Tensor, targets: Any) -> dict[str, torch.Tensor]:
        task = self.tasks[name]
        features = self.backbone.forward_features(self.input(inputs), task.taps)
        return task(features, targets)

    def forward(self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Weighted sum of the task losses (``loss``) plus every task's metrics, keyed ``<task>/<metric>``.

        One call covers every task so that DDP, which hooks ``forward``, sees the whole step.
        """
        outputs: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=rgb.device)
        rgb = rgb.contiguous(memory_format=memory_format(rgb.device))
        for name, weight in self.task_weights.items():
            inputs, targets = self.tasks[name].make_batch(rgb, labels, generator)
            with autocast(rgb.device):
                task_out = self.task_outputs(name, inputs, targets)
            total = total + weight * task_out["loss"].float()
            outputs.update({f"{name}/{k}": v.detach().float() for k, v in task_out.items()})
        outputs["loss"] = total
        return outputs

    def deepest_used_tap(self) -> int:
        """Index in ``backbone.feature_info`` of the deepest tap any task reads; later stages never run."""
        names = self.backbone.tap_names
        return max((names.index(tap) for task in self.tasks.values() for tap in task.taps), default=len(names) - 1)


def _build_task(name: str, cfg: Any, context: TaskContext):
    task_class = TASKS[name]
    if task_class.needs_labels and context.num_classes == 0:
        raise UserError(f"task {name} needs labels, but data.name={cfg.data.name} has none (a flat folder?)")
    return task_class(getattr(cfg, name), context)


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """``load_state_dict`` with a one-line error when the checkpoint belongs to another model."""
    own = module.state_dict()
    missing = sorted(own.keys() - weights.keys())
    unexpected = sorted(weights.keys() - own.keys())
    wrong = sorted(k for k in own.keys() & weights.keys() if own[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        example = (missing or unexpected or wrong)[0]
        raise UserError(
            f"{path} does not fit this model ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} mis-shaped tensors, e.g. {example}); was it written by a run with another model.* config?"
        )
    module.load_state_dict(weights)


def load_network(run: Path, checkpoint: str = "last") -> tuple[Any, Network]:
    """A trained run's config and its whole network (input, backbone, task heads) in eval mode, for
    inference (``colorize``, the colorization quality protocol). Tasks reload what they saved in ``run``."""
    from chromaproxy.config import config_from_dict
    from chromaproxy.engine.checkpoint import load_checkpoint, read_meta

    config_path = run / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{run} is not a run directory (no config.yaml); pass the folder 'chromaproxy pretrain' wrote")
    cfg = config_from_dict(yaml.safe_load(config_path.read_text()), source=str(config_path))
    path = run / "checkpoints" / f"{checkpoint}.safetensors"
    meta = read_meta(path)
    check_model(meta, cfg, path)
    network = Network(cfg, len(meta["classes"]), run=run)
    load_weights(network, load_checkpoint(path, "model."), path)
    return cfg, network.eval()
