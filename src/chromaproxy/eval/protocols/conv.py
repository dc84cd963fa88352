"""Conv-block protocol: RotNet's "NIN block" classifier on a frozen tap's feature map (Gidaris et al.
2018, CIFAR-10 evaluation; also SSL++'s per-block table). The feature maps are too large to cache, so
the frozen backbone runs on the fly, once per batch for all taps, with crop + flip augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.data.augment import AugmentSpec, augment, to_float
from chromaproxy.data.types import ImageSet
from chromaproxy.device import autocast
from chromaproxy.eval.probes import scheduled_batches, sgd
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import EvalSession
from chromaproxy.models.base import scaled
from chromaproxy.models.nin import nin_block


def conv_block_classifier(in_channels: int, width: float, num_classes: int) -> nn.Module:
    """A new NIN block (3x3, 1x1, 1x1 convs with BN + ReLU, 192 x width channels), global average pool,
    and a linear layer: RotNet's ConvB classifier."""
    channels = scaled(192, width)
    return nn.Sequential(
        nin_block(in_channels, [channels, channels, channels], kernel=3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes),
    )


def train_conv_probes(session: EvalSession, probes: nn.ModuleDict, train: ImageSet, options, seed: int) -> None:
    """Train every tap's probe on ``train`` through the frozen backbone (one backbone pass per batch)."""
    device, spec = session.device, AugmentSpec(crop_padding=4, hflip=True)
    probes.to(device).train()
    optimizer = sgd(probes, options)
    generator = torch.Generator(device).manual_seed(seed)
    for index in scheduled_batches(len(train), optimizer, options, seed, "conv-block probes"):
        rgb = augment(train.images[index].to(device), spec, generator)
        maps = _frozen_maps(session, rgb, list(probes.keys()))
        labels = train.labels[index].to(device)
        loss = sum(F.cross_entropy(probes[tap](maps[tap]), labels) for tap in probes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    probes.eval()


@torch.no_grad()
def _frozen_maps(session: EvalSession, rgb: torch.Tensor, taps: list[str]) -> dict[str, torch.Tensor]:
    session.network.eval()
    with autocast(session.device):
        maps = session.network.backbone.forward_features(session.network.input(rgb), taps)
    return {tap: value.float() for tap, value in maps.items()}


@torch.no_grad()
def conv_accuracy(session: EvalSession, probes: nn.ModuleDict, test: ImageSet) -> dict[str, float]:
    correct = dict.fromkeys(probes.keys(), 0)
    batch = session.cfg.eval.batch_size
    for start in range(0, len(test), batch):
        rgb = to_float(test.images[start : start + batch].to(session.device))
        labels = test.labels[start : start + batch].to(session.device)
        maps = _frozen_maps(session, rgb, list(probes.keys()))
        for tap, probe in probes.items():
            correct[tap] += (probe(maps[tap]).argmax(1) == labels).sum().item()
    return {tap: count / len(test) for tap, count in correct.items()}


def conv_records(session: EvalSession, train: ImageSet, options, seed: int, **params) -> list[dict]:
    torch.manual_seed(seed)
    info = {t.name: t for t in session.network.backbone.feature_info}
    probes = nn.ModuleDict({
        tap: conv_block_classifier(info[tap].channels, session.cfg.model.width, len(session.classes))
        for tap in session.taps
    })
    train_conv_probes(session, probes, train, options, seed)
    accuracies = conv_accuracy(session, probes, session.test)
    return [record(tap, "conv", "top1", accuracy, seed=seed, **params) for tap, accuracy in accuracies.items()]


def run(session: EvalSession, options) -> list[dict]:
    return conv_records(session, session.train, options, session.cfg.seed, epochs=options.epochs)


PROTOCOL = Protocol(run)
