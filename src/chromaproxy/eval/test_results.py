"""A training run's final test metrics (the end-of-training test pass in ``metrics.jsonl``) and their
aggregate over seeds (``seeds.json``, written by ``chromaproxy pretrain ... seeds=[...]``).

Semi-supervised tables (SESEMI, Color-S4L) quote test error = 100 − top-1 accuracy, mean ± standard
deviation over runs that differ only in their seed (the labeled split, the weights and the data order
all follow the seed). The deviation is the sample one (n − 1), as over a handful of runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from chromaproxy.errors import UserError

SEEDS_FILE = "seeds.json"
ACCURACY = "/acc"


def final_test(run: Path) -> dict[str, float]:
    """The last ``split: test`` record of ``run/metrics.jsonl`` without step and split; {} when none."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return {}
    last: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("split") == "test":
                last = record
    return {k: v for k, v in last.items() if k not in ("step", "split", "epoch")}


def test_errors(metrics: dict[str, float]) -> dict[str, float]:
    """{task: test error in %} for every task with an accuracy metric."""
    return {key.removesuffix(ACCURACY): 100 * (1 - value) for key, value in metrics.items() if key.endswith(ACCURACY)}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def aggregate(per_seed: dict[int, dict[str, float]]) -> dict[str, Any]:
    """``seeds.json``'s content: every seed's test metrics and, per task, the error's mean ± std."""
    errors = {seed: test_errors(metrics) for seed, metrics in per_seed.items()}
    tasks = sorted({task for found in errors.values() for task in found})
    summary = {}
    for task in tasks:
        values = [found[task] for found in errors.values() if task in found]
        mean, std = mean_std(values)
        summary[task] = {"mean": mean, "std": std, "values": values}
    return {"seeds": list(per_seed), "test": {str(seed): m for seed, m in per_seed.items()}, "test_error": summary}


def read_test_errors(run: Path) -> dict[str, tuple[float, float | None]] | None:
    """{task: (error %, std or None)} of a seeds folder or a single run; None when it has neither."""
    seeds = run / SEEDS_FILE
    if seeds.is_file():
        try:
            summary = json.loads(seeds.read_text())["test_error"]
        except (json.JSONDecodeError, KeyError) as err:
            raise UserError(f"{seeds} is not a seeds summary ({err}); run the seeds command again to rewrite it") from None
        return {task: (entry["mean"], entry["std"]) for task, entry in summary.items()}
    errors = test_errors(final_test(run))
    return {task: (value, None) for task, value in errors.items()} or None


def format_error(value: float, std: float | None) -> str:
    """``20.45 ± 0.34`` over seeds, ``46.43`` for one run."""
    return f"{value:.2f}" if std is None else f"{value:.2f} ± {std:.2f}"
