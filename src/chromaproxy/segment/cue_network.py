"""SEC's localisation network: a multi-label classifier with global average pooling whose class
activation maps (Zhou et al. 2016) give the seeding loss its cues (SEC, Sec. 3.1).

A 1x1 convolution on a backbone tap followed by global average pooling equals global average pooling
followed by a linear classifier, so the per-position output of the 1x1 convolution is the CAM itself.
Trained from scratch here on the training split's image-level labels only (the paper starts from
ImageNet weights, which this offline project does not have), with multi-label logistic loss, random
flips and small crops. Saved in the run as ``sec/cue_network.safetensors``; ``load_cue_network`` gives
it back to later stages (micro-annotation reads its CAMs and features).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from chromaproxy.checkpoint import load_checkpoint, read_meta, save_checkpoint
from chromaproxy.data.augment import AugmentSpec, augment
from chromaproxy.data.sources import SOURCES
from chromaproxy.errors import UserError
from chromaproxy.io import read_run_config
from chromaproxy.models import build_backbone
from chromaproxy.models.inputs import ModelInput, input_channels

NETWORK_FILE = "cue_network.safetensors"


class CueNetwork(nn.Module):
    """RGB (B, 3, S, S) in [0, 1] → CAMs (B, K, h, w) with class 0 (background) all zeros, and the tap's
    features (B, C, h, w); the image logits (B, K - 1) are the CAMs' spatial means (``logits``)."""

    def __init__(self, cfg: Any, num_classes: int) -> None:
        super().__init__()
        model = cfg.model
        mean, std = SOURCES[cfg.data.name].normalisation
        self.input = ModelInput(model.input, mean=mean, std=std)
        self.backbone = build_backbone(model.name, in_channels=input_channels(model.input), width=model.width, blocks=model.blocks)
        self.tap = self.backbone.resolve_taps([cfg.sec.tap or self.backbone.feature_info[-1].name])[0]
        self.classifier = nn.Conv2d(self.backbone.tap_info(self.tap).channels, num_classes - 1, 1)

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone.forward_features(self.input(rgb), [self.tap])[self.tap]  # (B, C, h, w)
        foreground = self.classifier(features)  # (B, K-1, h, w)
        return torch.cat([torch.zeros_like(foreground[:, :1]), foreground], dim=1), features


def logits(cams: torch.Tensor) -> torch.Tensor:
    """(B, K - 1) image logits of the foreground classes: global average pooling of their CAMs."""
    return cams[:, 1:].mean(dim=(2, 3))


def train_cue_network(network: CueNetwork, photos: torch.Tensor, labels: torch.Tensor, options: Any,
                      device: torch.device, seed: int, progress: bool) -> list[float]:
    """Adam on the multi-label logistic loss of ``labels`` (N, K) bool (column 0, background, unused);
    returns each epoch's mean loss."""
    generator = torch.Generator().manual_seed(seed)
    spec = AugmentSpec(crop_padding=max(1, photos.shape[-1] // 16), hflip=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=options.cue_lr)
    network.to(device).train()
    history, console, start = [], Console(stderr=True, quiet=not progress), time.monotonic()
    for epoch in range(options.cue_epochs):
        order, total = torch.randperm(len(photos), generator=generator), 0.0
        for index in order.split(options.cue_batch_size):
            rgb = augment(photos[index], spec, generator).to(device)
            cams, _ = network(rgb)
            loss = F.binary_cross_entropy_with_logits(logits(cams), labels[index, 1:].float().to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        history.append(total / len(photos))
        console.print(f"cue network: epoch {epoch + 1}/{options.cue_epochs} loss {history[-1]:.4f} "
                      f"({time.monotonic() - start:.0f} s)", soft_wrap=True)  # a line each epoch: logs show it too
    return history


def save_cue_network(network: CueNetwork, path: Path, meta: dict[str, Any]) -> None:
    save_checkpoint(path, network.state_dict(), meta)


def init_from_cue_network(backbone: nn.Module, run: Path) -> None:
    """``sec.init=cues``: SEC's backbone starts from the cue network's (the paper starts both networks from
    the same ImageNet classifier; here the image-label classifier of the cue stage stands in for it)."""
    path = run / "sec" / NETWORK_FILE
    if not path.is_file():
        raise UserError(f"sec.init=cues needs {path}, which the cue stage writes; rerun without resume, or set sec.init=random")
    backbone.load_state_dict(load_checkpoint(path, "backbone."))


def load_cue_network(run_dir: str | Path) -> "CueModel":
    """The cue network a finished (or cue-stage-finished) SEC run saved, in eval mode on the CPU.

    Returns a ``CueModel``: call it on photos (B, 3, S, S) in [0, 1] (S = the run's ``data.image_size``;
    ``cue_model.side``) to get ``(cams, features, labels)``: CAMs (B, K, h, w) with class 0 (background)
    all zeros and classes 1.. the dataset's, the tap's feature map (B, C, h, w) at the CAMs' resolution,
    and image-level labels (B, K) bool — the ones passed in (``labels=``), else the classifier's own
    (sigmoid > 0.5), background always True. ``cue_model.classes`` names the K classes.
    """
    run = Path(run_dir)
    path = run / "sec" / NETWORK_FILE
    if not path.is_file():
        raise UserError(f"{run} holds no {path.relative_to(run)}; it is written by the cue stage of a SEC run (tasks=[sec])")
    meta = read_meta(path)
    network = CueNetwork(read_run_config(run), len(meta["classes"]))
    network.load_state_dict(load_checkpoint(path))
    return CueModel(network.eval(), meta["classes"], meta["side"])


class CueModel:
    """What micro-annotation needs from a SEC run: photos → (cams, features, labels); see ``load_cue_network``."""

    def __init__(self, network: CueNetwork, classes: list[str], side: int) -> None:
        self.network, self.classes, self.side = network, classes, side

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cams, features = self.network(rgb)
        if labels is None:
            labels = torch.cat([torch.ones_like(cams[:, :1, 0, 0], dtype=torch.bool), logits(cams) > 0], dim=1)  # (B, K)
        return cams, features, labels.bool()

