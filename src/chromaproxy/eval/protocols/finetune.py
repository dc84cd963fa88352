"""Fine-tune protocol: the whole network (backbone + a new linear head) trained on the labeled split,
plus the per-tap feature shift — linear CKA between a tap's features before and after fine-tuning on the
same test images (Larsson et al. 2017 ask how much self-supervised features change when fine-tuned).
The session's own backbone is never modified: fine-tuning works on a deep copy.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from chromaproxy.data.augment import AugmentSpec, augment
from chromaproxy.device import autocast
from chromaproxy.eval.cka import linear_cka
from chromaproxy.eval.features import extract_features
from chromaproxy.eval.probes import head_accuracy, scheduled_batches, sgd
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import EvalSession


class _Classifier(nn.Module):
    def __init__(self, session: EvalSession) -> None:
        super().__init__()
        self.input = session.network.input
        self.backbone = copy.deepcopy(session.network.backbone)
        self.deepest = self.backbone.feature_info[-1]
        self.head = nn.Linear(self.deepest.channels, len(session.classes))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        features = self.backbone.forward_features(self.input(rgb), [self.deepest.name])[self.deepest.name]
        return self.head(features.mean(dim=(2, 3)))  # (B, classes) from globally pooled (B, C)


def _fine_tune(session: EvalSession, options) -> _Classifier:
    torch.manual_seed(session.cfg.seed)
    model = _Classifier(session).to(session.device).train()
    optimizer = sgd(model, options)
    generator = torch.Generator(session.device).manual_seed(session.cfg.seed)
    spec, train = AugmentSpec(crop_padding=4, hflip=True), session.train
    for index in scheduled_batches(len(train), optimizer, options, session.cfg.seed, "fine-tuning"):
        rgb = augment(train.images[index].to(session.device), spec, generator)
        with autocast(session.device):
            loss = F.cross_entropy(model(rgb).float(), train.labels[index].to(session.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def _test_accuracy(session: EvalSession, model: _Classifier) -> float:
    deepest = model.deepest.name
    features = extract_features(model.backbone, model.input, session.test, [deepest], "avg", session.device)
    return head_accuracy(model.head.cpu(), features[deepest], session.test.labels)


def run(session: EvalSession, options) -> list[dict]:
    model = _fine_tune(session, options)
    records = [record(None, "finetune", "top1", _test_accuracy(session, model), epochs=options.epochs)]
    images = session.test.subset(torch.arange(min(options.cka_images, len(session.test))))
    before = extract_features(session.network.backbone, session.network.input, images, session.taps, "avg", session.device)
    after = extract_features(model.backbone, model.input, images, session.taps, "avg", session.device)
    for tap in session.taps:
        records.append(record(tap, "finetune", "cka", linear_cka(before[tap], after[tap]), images=len(images)))
    return records


PROTOCOL = Protocol(run, headline=lambda cfg: {"metric": "cka"}, title="finetune: top-1 and CKA before/after")
