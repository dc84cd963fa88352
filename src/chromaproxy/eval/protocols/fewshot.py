"""Few-label protocol: the frozen features evaluated with only 20/100/400/1000 labels per class (SSL++),
several seeded label draws each, reported per draw and as mean ± std, on a kNN, linear or conv base.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

import torch

from chromaproxy.data.splits import label_split
from chromaproxy.eval.protocols.conv import conv_records
from chromaproxy.eval.protocols.knn import knn_records
from chromaproxy.eval.protocols.linear import linear_records
from chromaproxy.eval.protocols.spec import Protocol
from chromaproxy.eval.session import EvalSession


def _draw_records(session: EvalSession, base: str, count: int, seed: int) -> list[dict]:
    """Records of one seeded draw of ``count`` labels per class, evaluated on the chosen base."""
    index = label_split(session.train.labels, count, seed)
    labels = session.train.labels[index]
    params = {"labels_per_class": count}  # the probes tag their records with their seed themselves
    if base == "conv":
        return conv_records(session, session.train.subset(index), session.cfg.conv, seed, **params)
    options = session.cfg.knn if base == "knn" else session.cfg.linear
    train = {tap: feats[index] for tap, feats in session.features("train", options.pooling).items()}
    test = session.features("test", options.pooling)
    if base == "knn":
        return knn_records(train, labels, test, session.test.labels, options, seed=seed, **params)
    return linear_records(train, labels, test, session.test.labels, len(session.classes), options, seed, **params)


def _summaries(records: list[dict]) -> list[dict]:
    """Mean and std over seeds of records that agree on everything but seed and value."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for item in records:
        key = tuple(sorted((k, v) for k, v in item.items() if k not in ("seed", "value", "dim")))
        groups[key].append(item)
    summaries = []
    for key, items in groups.items():
        values = [item["value"] for item in items]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        summaries.append({**dict(key), "value": statistics.fmean(values), "std": std, "seed": "mean",
                          "seeds": [item["seed"] for item in items]})
    return summaries


def run(session: EvalSession, options) -> list[dict]:
    per_class = torch.bincount(session.train.labels).min().item()
    records = []
    for count in (n for n in options.labels_per_class if n <= per_class):
        for seed in options.seeds:
            records += _draw_records(session, options.base, count, seed)
    for item in records:
        item["protocol"] = "fewshot"
        item["base"] = options.base
    return records + _summaries(records)


PROTOCOL = Protocol(
    run,
    headline=lambda cfg: {"seed": "mean"},
    table_keep=lambda headline: {"seed": "mean", "k": 10, "vote": "weighted"},  # k = 10 weighted on a kNN base, every record on a linear one
    column=lambda r: f"{r['labels_per_class']}/class",
)
