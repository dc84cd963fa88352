"""``chromaproxy pipeline``: SSL++'s whole experiment from one preset, stage by stage into one directory.

Stages, each in its own folder of ``out``:

1. ``cluster/``: IIC on the run's own training images (the ``pipeline.cluster`` preset with
   ``pipeline.cluster_overrides``, then the pretraining run's ``data.*`` and seed, so the labels file is
   aligned by construction), then the labels file. A cluster preset is tuned as a budget of images seen
   (epochs x its own image count), so on a run with another image count its epochs are rescaled to see
   as many images (rounded down: never more time than the preset's), unless the overrides set
   ``train.epochs`` or ``train.max_steps``; this keeps every SSL++ preset in step with the one IIC preset;
2. ``proxy/``: the proxy task(s) alone, the reference column (``pipeline.baseline``);
3. ``sslpp/``: the preset itself, proxy task(s) + pseudo-labels from ``cluster/``;
4. evaluation of both (``pipeline.eval_preset``, ``pipeline.protocols``) into their ``eval/``;
5. ``report.md``: the two runs side by side, per block.

A stage whose output exists for the same config is skipped; one that was stopped (a kill, Ctrl-C, a
crash) resumes from its last checkpoint; a stage whose saved config differs from what the preset now
asks for is an error naming the stage and the first differing key, never a silent reuse of stale
results.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from chromaproxy.checkpoint import read_meta
from chromaproxy.cluster.labels_file import LABELS_FILE
from chromaproxy.config import load_config, validate
from chromaproxy.engine.data import training_images
from chromaproxy.engine.run_dir import config_changes, has_checkpoint
from chromaproxy.errors import UserError
from chromaproxy.eval.results import read_results
from chromaproxy.io import checkpoint_dir

PSEUDO = "pseudolabel"
Train = Callable[[Any], Path]  # trains (or resumes) a config's run and returns its directory


def run_pipeline(cfg: Any, train: Train, console: Console) -> Path:
    """Every stage in order; returns the report's path."""
    if cfg.out is None:
        raise UserError("pipeline needs out=DIR: the folder that holds every stage")
    if PSEUDO not in cfg.tasks or cfg.pipeline.cluster is None:
        raise UserError("pipeline runs an SSL++ preset: tasks with pseudolabel and pipeline.cluster=CLUSTER_PRESET, e.g. configs/sslpp-rotation-cifar10-quick.yaml")
    out = Path(cfg.out)
    stages = stage_configs(cfg, out, console)
    for number, (name, stage) in enumerate(stages.items(), start=1):
        console.print(f"[bold]stage {number}/{len(stages) + 2}: {name}[/bold] → {stage.out}")
        train_stage(name, stage, train, console)
        if name == "cluster" and not (Path(stage.out) / LABELS_FILE).is_file():
            assign_clusters(Path(stage.out), stage)
    runs = [Path(stages[name].out) for name in ("proxy", "sslpp") if name in stages]
    console.print(f"[bold]stage {len(stages) + 1}/{len(stages) + 2}: evaluate[/bold] {', '.join(map(str, runs))}")
    for run in runs:
        evaluate_stage(run, cfg, console)
    from chromaproxy.eval.report import write_report

    console.print(f"[bold]stage {len(stages) + 2}/{len(stages) + 2}: report[/bold] → {out / 'report.md'}")
    path, warnings = write_report(runs, out, visuals=False)
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    return path


def assign_clusters(run: Path, cfg: Any) -> tuple[Path, dict[str, Any]]:
    """The labels file of a trained IIC run (``chromaproxy cluster``'s second half)."""
    from chromaproxy.eval.clustering import assign

    return assign(run, training_images(cfg)[2])


def stage_configs(cfg: Any, out: Path, console: Console | None = None) -> dict[str, Any]:
    """The config of every training stage: cluster, sslpp and (with pipeline.baseline) proxy."""
    preset = load_config(cfg.pipeline.cluster, cfg.pipeline.cluster_overrides)
    cluster = copy.deepcopy(preset)
    cluster.data = copy.deepcopy(cfg.data)
    cluster.seed, cluster.device, cluster.out = cfg.seed, cfg.device, str(out / "cluster")
    if cluster.data != preset.data and not _sets_length(cfg.pipeline.cluster_overrides):
        keep_images_seen(preset, cluster, console)
    validate(cluster)
    sslpp = copy.deepcopy(cfg)
    sslpp.out, sslpp.pseudolabel.labels = str(out / "sslpp"), str(out / "cluster")
    stages = {"cluster": cluster, "sslpp": sslpp}
    if cfg.pipeline.baseline:
        proxy = copy.deepcopy(sslpp)
        kept = [(t, w) for t, w in zip(cfg.tasks, cfg.task_weights) if t != PSEUDO]
        proxy.tasks, proxy.task_weights = [t for t, _ in kept], [w for _, w in kept]
        proxy.pseudolabel = type(cfg.pseudolabel)()
        proxy.out = str(out / "proxy")
        validate(proxy)
        stages = {"cluster": cluster, "proxy": proxy, "sslpp": sslpp}
    return stages


def keep_images_seen(preset: Any, cluster: Any, console: Console | None) -> None:
    """Set the cluster stage's epochs so that it sees as many images as the preset on its own images."""
    budget = preset.train.epochs * len(training_images(preset, progress=False)[2])
    images = len(training_images(cluster, progress=False)[2])
    epochs = max(1, budget // images)
    if console is not None and epochs != cluster.train.epochs:
        console.print(f"  cluster: {epochs} epochs of {images:,} images, the preset's budget of "
                      f"{budget:,} images seen (set pipeline.cluster_overrides=[train.epochs=N] to choose)",
                      markup=False, soft_wrap=True)
    cluster.train.epochs = epochs


def _sets_length(overrides: list[str]) -> bool:
    """Whether the overrides choose the cluster stage's length themselves."""
    return any(item.partition("=")[0].strip() in ("train.epochs", "train.max_steps") for item in overrides)


def train_stage(name: str, cfg: Any, train: Train, console: Console) -> None:
    """Train the stage, resume it, or skip it when finished; refuse a stage made with another config."""
    run = Path(cfg.out)
    if has_checkpoint(run):
        changed = config_changes(run, cfg)
        if changed:
            key, saved, now = changed[0]
            raise UserError(
                f"pipeline stage {name} in {run} was run with {key}={saved!r}, the preset now gives {now!r}; "
                f"use another out=DIR, or delete {run} to redo that stage"
            )
        meta = read_meta(checkpoint_dir(run) / "last.safetensors")
        if meta["step"] >= meta["total_steps"]:
            console.print(f"  {name}: finished before (step {meta['step']}), skipped")
            return
        cfg.resume = True
    train(cfg)


def evaluate_stage(run: Path, cfg: Any, console: Console) -> None:
    """Run the protocols a run has no result for; an existing result made with other options is an error."""
    from chromaproxy.eval.evaluate import evaluate, parse_protocols
    from chromaproxy.eval.session import open_run

    preset = Path(cfg.pipeline.eval_preset) if cfg.pipeline.eval_preset else None
    session = open_run(run, [f"eval.protocols=[{','.join(cfg.pipeline.protocols)}]"], "last", preset)
    missing = []
    for protocol in parse_protocols(",".join(session.cfg.eval.protocols)):
        path = run / "eval" / f"{protocol}.json"
        if not path.is_file():
            missing.append(protocol)
            continue
        saved = read_results(path)["manifest"]
        wanted = _options_of(session.cfg, protocol)
        if saved.get("options") != wanted or saved.get("splits") != session.common_manifest()["splits"]:
            raise UserError(
                f"pipeline stage evaluate: {path} was made with other {protocol} options or splits than the preset "
                f"now gives; delete it to evaluate again"
            )
        console.print(f"  {run.name}: {protocol} evaluated before, skipped")
    if missing:
        evaluate(session, missing, console)


def _options_of(cfg: Any, protocol: str) -> Any:
    from chromaproxy.eval.protocols import PROTOCOLS

    options = getattr(cfg, PROTOCOLS[protocol].options_section or protocol)
    return json.loads(json.dumps(asdict(options) if dataclasses.is_dataclass(options) else options))  # as saved
