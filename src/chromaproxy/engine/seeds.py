"""``chromaproxy pretrain CONFIG seeds=[0,1,2]``: the same run once per seed, then mean ± std.

Each seed trains into ``out/seed<k>/`` as an ordinary run (its config has that seed and no ``seeds``,
so it can be evaluated or resumed alone); ``out/seeds.json`` then holds every seed's final test metrics
and each task's test error as mean ± std, which ``chromaproxy report`` shows as "20.45 ± 0.34".
Running the same command again skips the seeds that finished, resumes one that was stopped, and
refuses one whose saved config differs (the pipeline's rules).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from chromaproxy.engine.pipeline import Train, train_stage
from chromaproxy.engine.run_dir import default_out
from chromaproxy.errors import UserError
from chromaproxy.eval.test_results import SEEDS_FILE, aggregate, final_test, format_error
from chromaproxy.io import atomic_write_text


def seed_configs(cfg: Any) -> dict[int, Any]:
    """{seed: the run config of that seed}, into ``out/seed<k>``."""
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise UserError(f"seeds={list(cfg.seeds)} repeats a seed; give each seed once")
    out = Path(default_out(cfg))
    configs = {}
    for seed in cfg.seeds:
        stage = copy.deepcopy(cfg)
        stage.seed, stage.seeds, stage.out, stage.resume = seed, [], str(out / f"seed{seed}"), False
        configs[seed] = stage
    return configs


def run_seeds(cfg: Any, train: Train, console: Console, main: bool = True) -> Path:
    """Train every seed (skipping finished ones) and write ``seeds.json``; returns its path."""
    configs = seed_configs(cfg)
    per_seed = {}
    for number, (seed, stage) in enumerate(configs.items(), start=1):
        console.print(f"[bold]seed {seed} ({number}/{len(configs)})[/bold] → {stage.out}")
        train_stage(f"seed {seed}", stage, train, console)
        per_seed[seed] = final_test(Path(stage.out))
    summary = aggregate(per_seed)
    path = Path(cfg.out) / SEEDS_FILE
    if main:
        atomic_write_text(path, json.dumps(summary, indent=1) + "\n")
    for task, entry in summary["test_error"].items():
        console.print(f"{task} test error over {len(entry['values'])} seeds: {format_error(entry['mean'], entry['std'])} %")
    return path
