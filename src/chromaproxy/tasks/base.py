"""The task contract: what every proxy or supervised task provides to the trainer.

A task builds its inputs and targets from a batch of augmented RGB images, owns its head(s), and returns
a dict with ``loss`` plus whatever metrics it wants logged. The trainer turns the task's RGB inputs into
the run's input representation (``model.input``) and runs the shared backbone up to ``task.taps``; so all
tasks of a run see the same representation, and a task never touches the backbone itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from pathlib import Path

    from chromaproxy.data.types import ImageSet
    from chromaproxy.models.base import Backbone


@dataclass(frozen=True)
class TaskContext:
    """What a task may know about the run when it builds its heads.

    ``images`` (the training split) lets a task derive statistics from the data before training (e.g. the
    colorization prior); ``run`` is where it keeps them. Both are None when a trained network is rebuilt
    for inference, and a task then reloads what it saved in ``run``.
    """

    backbone: "Backbone"
    num_classes: int
    images: "ImageSet | None" = None
    run: "Path | None" = None


class Task(nn.Module, ABC):
    """Base class: subclasses set ``name``, ``Options`` and implement ``make_batch`` and ``forward``.

    ``forward(features, targets)`` returns ``{"loss": scalar, **metrics}``; metrics are detached scalars.
    """

    name: ClassVar[str]
    Options: ClassVar[type]
    needs_labels: ClassVar[bool] = False
    inputs: ClassVar[tuple[str, ...]] = ("rgb", "L", "sobel")
    padding_mode: ClassVar[str] = "zeros"  # the crop padding this task wants under augment.padding_mode=auto
    targets_from: str = "labels"  # what make_batch's ``labels`` holds: "labels", "pseudo_labels" or "recolorized"
    augment_hflip: ClassVar[bool] = True  # False: the task's own labels include a horizontal flip, so its images get none
    reads_backbone: ClassVar[bool] = True  # False: an image model that owns all its networks (model.name=pixels)
    partial_graph: ClassVar[bool] = False  # some parameters may get no gradient on a step (DDP must look for them)
    coupled: bool = False  # the trainer calls ``recluster(features, seed)`` at every epoch start for new targets

    def __init__(self, options: Any, context: TaskContext) -> None:
        super().__init__()
        self.options = options
        self.taps: list[str] = []

    def read_tap(self, context: TaskContext, tap: str | None) -> int:
        """Make ``tap`` (None = the deepest) the one tap this task reads; returns its channel count."""
        name = context.backbone.resolve_taps([tap or context.backbone.feature_info[-1].name])[0]
        self.taps = [name]
        return context.backbone.tap_info(name).channels

    @abstractmethod
    def make_batch(
        self, rgb: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, Any]:
        """Turn augmented RGB images (B, 3, H, W) in [0, 1] into this task's inputs and targets."""
