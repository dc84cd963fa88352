"""MLP protocol: RotNet's 1-, 2- and 3-layer fully connected classifiers on pooled frozen features; with
``mlp.pooling=grid8`` they read the flattened 8x8 map (192x8x8 = 12,288 values at full width), as RotNet's."""

from __future__ import annotations

import torch

from chromaproxy.eval.probes import head_accuracy, mlp_head, train_heads
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import EvalSession


def run(session: EvalSession, options) -> list[dict]:
    train = session.features("train", options.pooling)
    test = session.features("test", options.pooling)
    torch.manual_seed(session.cfg.seed)
    heads = {
        f"{tap}/{layers}": mlp_head(feats.shape[1], len(session.classes), layers, options.hidden, options.batchnorm)
        for tap, feats in train.items()
        for layers in options.layers
    }
    inputs = {name: train[name.split("/")[0]] for name in heads}
    train_heads(heads, inputs, session.train.labels, options, session.cfg.seed, description="MLP probes")
    records = []
    for name, head in heads.items():
        tap, layers = name.split("/")
        accuracy = head_accuracy(head, test[tap], session.test.labels)
        records.append(record(tap, "mlp", "top1", accuracy, layers=int(layers), pooling=options.pooling,
                              dim=train[tap].shape[1]))
    return records


PROTOCOL = Protocol(run, headline=lambda cfg: {"layers": 2}, column=lambda r: f"{r['layers']} FC")
