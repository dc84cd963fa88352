"""Linear protocol: BN + linear (or plain linear) on pooled frozen features, every tap in one pass."""

from __future__ import annotations

import torch

from chromaproxy.eval.probes import head_accuracy, linear_head, train_heads
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import EvalSession


def linear_records(
    train: dict[str, torch.Tensor], train_labels: torch.Tensor,
    test: dict[str, torch.Tensor], test_labels: torch.Tensor, num_classes: int, options, seed: int, **params,
) -> list[dict]:
    torch.manual_seed(seed)
    heads = {tap: linear_head(feats.shape[1], num_classes, options.batchnorm) for tap, feats in train.items()}
    train_heads(heads, train, train_labels, options, seed, description="linear probes")
    return [
        record(tap, "linear", "top1", head_accuracy(head, test[tap], test_labels), pooling=options.pooling,
               dim=train[tap].shape[1], seed=seed, **params)
        for tap, head in heads.items()
    ]


def run(session: EvalSession, options) -> list[dict]:
    return linear_records(
        session.features("train", options.pooling), session.train.labels,
        session.features("test", options.pooling), session.test.labels,
        len(session.classes), options, session.cfg.seed,
    )


PROTOCOL = Protocol(run)
