"""The trained network: input representation → shared backbone → one head per task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from chromaproxy.data.types import ImageSet
from chromaproxy.errors import UserError
from chromaproxy.models import build_backbone
from chromaproxy.models.inputs import IMAGENET_MEAN, IMAGENET_STD, ModelInput, input_channels
from chromaproxy.tasks import TASKS, TaskContext

_DATASET_STATS = {"cifar10": None}  # None = ModelInput's default, the RotNet CIFAR-10 statistics


def model_description(cfg: Any) -> dict[str, Any]:
    """What a checkpoint must match to be loaded into this network (stored in its metadata)."""
    model = cfg.model
    return {"name": model.name, "width": model.width, "blocks": model.blocks, "input": model.input}


def check_model(meta: dict[str, Any], cfg: Any, path: Path) -> None:
    """A checkpoint's model description must match the config it is loaded into."""
    if meta["model"] != model_description(cfg):
        raise UserError(f"{path} holds model {meta['model']}, not {model_description(cfg)}; load it with the config of the run it came from")


def build_input(cfg: Any) -> ModelInput:
    if cfg.data.name in _DATASET_STATS:
        return ModelInput(cfg.model.input)
    return ModelInput(cfg.model.input, mean=IMAGENET_MEAN, std=IMAGENET_STD)


class Network(nn.Module):
    """Holds the parts a run trains; state-dict keys are ``backbone.*`` and ``tasks.<name>.*``."""

    def __init__(self, cfg: Any, num_classes: int, images: ImageSet | None = None, run: Path | None = None) -> None:
        super().__init__()
        model = cfg.model
        self.input = build_input(cfg)
        self.backbone = build_backbone(
            model.name, in_channels=input_channels(model.input), width=model.width, blocks=model.blocks
        )
        context = TaskContext(self.backbone, num_classes, model.input, images=images, run=run)
        self.tasks = nn.ModuleDict({name: _build_task(name, cfg, context) for name in cfg.tasks})

    def task_outputs(self, name: str, inputs: torch.Tensor, targets: Any) -> dict[str, torch.Tensor]:
        task = self.tasks[name]
        features = self.backbone.forward_features(self.input(inputs), task.taps)
        return task(features, targets)


def _build_task(name: str, cfg: Any, context: TaskContext):
    task_class = TASKS[name]
    if task_class.needs_labels and context.num_classes == 0:
        raise UserError(f"task {name} needs labels, but data.name={cfg.data.name} has none (a flat folder?)")
    return task_class(getattr(cfg, name), context)
