"""kNN protocol: cosine kNN on pooled frozen features of every tap, all k and both votes at once."""

from __future__ import annotations

import torch

from chromaproxy.eval.knn import knn_predict
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.results import record
from chromaproxy.eval.session import EvalSession

HEADLINE_K = 10  # SSL++ Tables V-VI


def knn_records(
    train: dict[str, torch.Tensor], train_labels: torch.Tensor,
    test: dict[str, torch.Tensor], test_labels: torch.Tensor, options, **params,
) -> list[dict]:
    """Top-1 per tap, k and vote; shared with the few-label protocol (``params`` tag the records)."""
    records = []
    for tap in train:
        predictions = knn_predict(train[tap], train_labels, test[tap], options.ks, options.temperature)
        for (k, vote), predicted in predictions.items():
            accuracy = (predicted == test_labels).float().mean().item()
            records.append(record(tap, "knn", "top1", accuracy, k=k, vote=vote, **params))
    return records


def run(session: EvalSession, options) -> list[dict]:
    train = session.features("train", options.pooling)
    test = session.features("test", options.pooling)
    return knn_records(train, session.train.labels, test, session.test.labels, options, pooling=options.pooling)


def headline(cfg) -> dict:
    """SSL++'s k = 10 with ``knn.vote``; a k list without 10 headlines its first k instead."""
    if cfg is None:
        return {"k": HEADLINE_K, "vote": "weighted"}
    return {"k": HEADLINE_K if HEADLINE_K in cfg.knn.ks else cfg.knn.ks[0], "vote": cfg.knn.vote}


PROTOCOL = Protocol(
    run,
    headline=headline,
    table_keep=lambda headline: {"k": headline["k"]},  # every k is in knn.json; the terminal shows the headline's
    column=lambda r: f"k={r['k']} {r['vote']}",  # both votes side by side
    title="knn: top-1 per tap (%); every k in eval/knn.json",
)
