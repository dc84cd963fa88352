"""The network of a run: input representation → shared backbone → one head per task.

Training, evaluation and inference all build it, so it lives outside the training engine. The
constructor takes the three parts; ``from_config`` builds them as a run's config says, and
``backbone_only`` builds the input and backbone alone, which is all probing needs.

``task_weights_scope=backbone`` exists because a small loss weight with SGD and weight decay starves the
head it weights: at λ = 0.05 a classifier head steps 20 times less on its loss while its decay stays whole,
so it stays near uniform and what it sends into the backbone says little (SSL++'s rotation + pseudo-labels
head learned 11 % of its 70 clusters). Scaling the gradient at the taps instead gives the backbone exactly
the weighted objective's gradient while the head learns at full strength.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from chromaproxy.checkpoint import load_checkpoint, read_meta
from chromaproxy.data.sources import SOURCES
from chromaproxy.data.types import ImageSet
from chromaproxy.device import MEMORY_FORMAT, autocast
from chromaproxy.ema import PREFIX as EMA_PREFIX
from chromaproxy.errors import UserError
from chromaproxy.io import checkpoint_dir, read_run_config
from chromaproxy.models import build_backbone
from chromaproxy.models.base import Backbone
from chromaproxy.models.inputs import ModelInput, input_channels
from chromaproxy.tasks import TASKS, Task, TaskContext


def model_description(cfg: Any) -> dict[str, Any]:
    """What a checkpoint must match to be loaded into this network (stored in its metadata)."""
    model = cfg.model
    return {"name": model.name, "width": model.width, "blocks": model.blocks, "input": model.input}


def check_model(meta: dict[str, Any], cfg: Any, path: Path) -> None:
    """A checkpoint's model description must match the config it is loaded into."""
    if meta["model"] != model_description(cfg):
        raise UserError(f"{path} holds model {meta['model']}, not {model_description(cfg)}; load it with the config of the run it came from")


def build_input(cfg: Any) -> ModelInput:
    mean, std = SOURCES[cfg.data.name].normalisation
    return ModelInput(cfg.model.input, mean=mean, std=std)


def build_config_backbone(cfg: Any) -> Backbone:
    model = cfg.model
    return build_backbone(model.name, in_channels=input_channels(model.input), width=model.width, blocks=model.blocks)


class Network(nn.Module):
    """Holds the parts a run trains; state-dict keys are ``backbone.*`` and ``tasks.<name>.*``."""

    def __init__(
        self, model_input: ModelInput, backbone: Backbone, tasks: dict[str, Task], task_weights: dict[str, float],
        weights_scope: str = "loss",
    ) -> None:
        super().__init__()
        self.input, self.backbone = model_input, backbone
        self.tasks = nn.ModuleDict(tasks)
        self.task_weights, self.weights_scope = task_weights, weights_scope
        self.to(memory_format=MEMORY_FORMAT)  # kept by .to(device) and load_state_dict: every caller gets it

    @classmethod
    def from_config(cls, cfg: Any, num_classes: int, images: ImageSet | None = None, run: Path | None = None) -> "Network":
        """The network ``cfg`` describes; ``images`` and ``run`` reach the tasks (a prior to estimate and save)."""
        backbone = build_config_backbone(cfg)
        context = TaskContext(backbone, num_classes, images=images, run=run)
        tasks = {name: _build_task(name, cfg, context) for name in cfg.tasks}
        return cls(build_input(cfg), backbone, tasks, dict(zip(cfg.tasks, cfg.task_weights)), cfg.task_weights_scope)

    @classmethod
    def backbone_only(cls, cfg: Any) -> "Network":
        """Input and backbone without task heads: what the probes read features from."""
        return cls(build_input(cfg), build_config_backbone(cfg), {}, {})

    def task_outputs(
        self, name: str, inputs: torch.Tensor, targets: Any, backbone_gradient: float = 1.0
    ) -> dict[str, torch.Tensor]:
        """One task's loss and metrics; ``backbone_gradient`` scales what its loss sends into the backbone."""
        task = self.tasks[name]
        if not task.reads_backbone:
            return task({}, targets)
        features = self.backbone.forward_features(self.input(inputs), task.taps)
        if backbone_gradient != 1.0:
            features = {tap: ScaleGradient.apply(value, backbone_gradient) for tap, value in features.items()}
        return task(features, targets)

    def forward(
        self,
        rgb: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator,
        pseudo_labels: torch.Tensor | None = None,
        labeled: tuple[torch.Tensor, torch.Tensor] | None = None,
        recolorized: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Weighted sum of the task losses (``loss``) plus every task's metrics, keyed ``<task>/<metric>``.

        Each task's ``make_batch`` gets the per-image targets it reads (``Task.targets_from``): the labels,
        the pseudo-labels or the recolorized images; a task whose targets a split lacks is left out there
        (pseudo-labels and recolorized images exist for the training images only). ``labeled`` is a
        semi-supervised run's second batch (rgb, labels): the tasks that need labels train on it, the
        others on ``rgb``. With ``weights_scope="backbone"`` a task's weight scales the gradient at its taps
        and ``loss`` sums the unweighted losses (the backbone's gradient is the same). One call covers every
        task so that DDP, which hooks ``forward``, sees the whole step.
        """
        outputs: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=rgb.device)
        rgb = rgb.contiguous(memory_format=MEMORY_FORMAT)
        per_image = {"labels": labels, "pseudo_labels": pseudo_labels, "recolorized": recolorized}
        for name, weight in self.task_weights.items():
            task = self.tasks[name]
            images, targets = rgb, per_image[task.targets_from]
            if labeled is not None and task.needs_labels:
                images, targets = labeled[0].contiguous(memory_format=MEMORY_FORMAT), labeled[1]
            if targets is None:
                continue
            inputs, targets = task.make_batch(images, targets, generator)
            at_taps = self.weights_scope == "backbone" and task.reads_backbone
            backbone_gradient, loss_weight = (weight, 1.0) if at_taps else (1.0, weight)
            with autocast(rgb.device):
                task_out = self.task_outputs(name, inputs, targets, backbone_gradient)
            total = total + loss_weight * task_out["loss"].float()
            outputs.update({f"{name}/{k}": v.detach().float() for k, v in task_out.items()})
        outputs["loss"] = total
        return outputs

    def deepest_used_tap(self) -> int:
        """Index in ``backbone.feature_info`` of the deepest tap any task reads; later stages never run."""
        names = self.backbone.tap_names
        return max((names.index(tap) for task in self.tasks.values() for tap in task.taps), default=len(names) - 1)


class ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def _build_task(name: str, cfg: Any, context: TaskContext):
    task_class = TASKS[name]
    if task_class.needs_labels and context.num_classes == 0:
        raise UserError(f"task {name} needs labels, but data.name={cfg.data.name} has none (a flat folder?)")
    if not task_class.reads_backbone and any(True for _ in context.backbone.parameters()):
        raise UserError(f"task {name} models the images itself and reads no backbone; set model.name=pixels "
                        f"(model.name={cfg.model.name} would be trained by nothing)")
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


def inference_weights(path: Path, part: str = "") -> dict[str, torch.Tensor]:
    """The weights under ``part`` (e.g. ``backbone.``) that inference uses: the Polyak average
    (``ema.*``, ``train.ema``) when the run kept one, else the training weights (``model.*``)."""
    return load_checkpoint(path, f"{EMA_PREFIX}{part}") or load_checkpoint(path, f"model.{part}")


def load_backbone(run: Path, checkpoint: str = "last", cfg: Any | None = None) -> Network:
    """A trained run's input and backbone without task heads (``backbone_only``), with the checkpoint's
    backbone weights: what probing and k-means read features from. ``cfg`` defaults to the run's own."""
    cfg = cfg if cfg is not None else read_run_config(run)
    path = checkpoint_dir(run) / f"{checkpoint}.safetensors"
    check_model(read_meta(path), cfg, path)
    network = Network.backbone_only(cfg)
    load_weights(network.backbone, inference_weights(path, "backbone."), path)
    return network.eval()


def load_network(run: Path, checkpoint: str = "last") -> tuple[Any, Network]:
    """A trained run's config and its whole network (input, backbone, task heads) in eval mode, for
    inference (``colorize``, the colorization quality protocol). Tasks reload what they saved in ``run``."""
    cfg = read_run_config(run)
    path = checkpoint_dir(run) / f"{checkpoint}.safetensors"
    meta = read_meta(path)
    check_model(meta, cfg, path)
    network = Network.from_config(cfg, len(meta["classes"]), run=run)
    load_weights(network, inference_weights(path), path)
    return cfg, network.eval()
