"""One training loop for every method: a weighted list of tasks over one shared backbone.

Exact resume: everything random comes from (a) the seed, (b) the global torch RNG and (c) the augmentation
generator; the data order is a pure function of (seed, epoch). A checkpoint stores the weights, the
optimizer state, both RNG states and the step, so a run killed after a checkpoint and resumed ends with
the same weights, bit for bit on a CPU, as one that was never interrupted.

Under ``torchrun`` the same loop runs on every rank (``engine/distributed.py``): each rank trains on its
share of the global batch with its own augmentation stream, DDP averages the gradients, metrics are
summed over ranks before they are logged, and only rank 0 writes the run directory. A checkpoint holds
every rank's random state, so a resumed multi-process run is as exact as a single-process one.

Stopping (``engine/stopping.py``): SIGINT and SIGTERM only set a flag; the loop finishes the step it is
in, writes the checkpoint and raises ``StopRequested``, so a scheduler's SIGTERM loses nothing. The same
poll writes a checkpoint every ``train.checkpoint_minutes``. Under DDP the ranks agree on both decisions
through an all-reduce, so every rank stops (and checkpoints) at the same step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from chromaproxy import __version__
from chromaproxy.checkpoint import load_checkpoint, optimizer_tensors, read_meta, restore_optimizer, save_checkpoint
from chromaproxy.data.augment import AugmentSpec
from chromaproxy.data.types import ImageSet
from chromaproxy.device import precision
from chromaproxy.ema import PREFIX as EMA_PREFIX
from chromaproxy.ema import PolyakAverage
from chromaproxy.engine import batches, distributed
from chromaproxy.engine.data import prepare_data
from chromaproxy.engine.distributed import Dist
from chromaproxy.engine.logging import MetricsLog, Throughput, TrainProgress
from chromaproxy.engine.sampler import EpochSampler, RepeatingSampler
from chromaproxy.engine.stopping import Stopper, StopRequested
from chromaproxy.errors import UserError
from chromaproxy.eval.features import extract_features
from chromaproxy.io import checkpoint_dir
from chromaproxy.network import Network, check_model, load_weights, model_description
from chromaproxy.optim import build_optimizer, lr_at, set_lr
from chromaproxy.segment.cue_network import init_from_cue_network
from chromaproxy.segment.sec_data import trains_on_cues

RANK_SEED_STRIDE = 0x9E3779B1  # keeps the ranks' augmentation seeds far apart; rank 0 uses the seed itself


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Trainer:
    def __init__(self, cfg: Any, run: Path, console: Console | None = None, dist: Dist | None = None) -> None:
        self.cfg, self.run = cfg, run
        self.console = console or Console(stderr=True)
        self.dist = dist or Dist()
        self.device = distributed.setup(self.dist, cfg.device)
        writes = run if self.dist.main else None
        torch.manual_seed(cfg.seed)
        self.data = prepare_data(cfg, writes, progress=self.dist.main, device=self.device, dist=self.dist)
        for warning in self.data.warnings if self.dist.main else []:
            self.console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
        self.network = Network.from_config(cfg, len(self.data.classes), images=self.data.train, run=writes).to(self.device)
        if writes is not None and trains_on_cues(cfg) and cfg.sec.init == "cues" and not cfg.resume:
            init_from_cue_network(self.network.backbone, writes)  # DDP hands rank 0's weights to the others
        unused = self.network.deepest_used_tap() < len(self.network.backbone.feature_info) - 1
        unused = unused or any(task.partial_graph for task in self.network.tasks.values())
        self.model = distributed.wrap(self.network, self.dist, self.device, find_unused=unused)
        self.optimizer = build_optimizer(cfg.train, self.network)
        self.ema = PolyakAverage(self.network, cfg.train.ema) if cfg.train.ema > 0 else None
        self.dist.local_batch(cfg.train.batch_size)  # a global batch that does not split is a UserError here
        labeled_sampler = self._labeled_sampler()
        labeled_only = labeled_sampler is None and all(task.needs_labels for task in self.network.tasks.values())
        self.sampler = EpochSampler(
            self.data.pool(labeled_only), cfg.train.batch_size, cfg.seed, self.dist.rank, self.dist.world_size
        )
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * self.sampler.steps_per_epoch
        spec = AugmentSpec(
            crop_padding=cfg.augment.crop_padding, padding_mode=self._padding_mode(), hflip=cfg.augment.hflip,
            crop_scale=tuple(cfg.augment.crop_scale), color_jitter=tuple(cfg.augment.color_jitter),
            color_jitter_p=cfg.augment.color_jitter_p, grayscale_p=cfg.augment.grayscale_p,
        )
        on_main = [t for t in self.network.tasks.values() if labeled_sampler is None or not t.needs_labels]
        self.batches = batches.StepBatches(batches.main_batch_spec(spec, on_main), spec, labeled_sampler, self.device)
        if self.batches.spec != spec and self.dist.main:
            self.console.print("note: augment.hflip is off for the images of a task that predicts flips itself "
                               "(a random flip would make two of its labels the same)", soft_wrap=True)
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed + self.dist.rank * RANK_SEED_STRIDE)
        self.step = 0
        self.best_val = math.inf

    def _labeled_sampler(self) -> RepeatingSampler | None:
        """Semi-supervised runs (``train.labeled_batch_size``): the sampler of the labeled batches."""
        size = self.cfg.train.labeled_batch_size
        if size is None:
            return None
        tasks = self.network.tasks.values()
        if all(task.needs_labels for task in tasks) or not any(task.needs_labels for task in tasks):
            raise UserError(
                f"train.labeled_batch_size={size} gives the labeled tasks their own batch, so it needs both a task "
                f"that needs labels (supervised) and one that does not; tasks={list(self.cfg.tasks)}: unset it"
            )
        self.dist.local_batch(size, "train.labeled_batch_size")
        return RepeatingSampler(self.data.pool(True), size, self.cfg.seed, self.dist.rank, self.dist.world_size)

    def _padding_mode(self) -> str:
        """``augment.padding_mode=auto``: reflection when a task reads colour targets off the crop (zero
        padding would teach it black borders), else RotNet's zeros."""
        if self.cfg.augment.padding_mode != "auto":
            return self.cfg.augment.padding_mode
        wanted = {task.padding_mode for task in self.network.tasks.values()}
        return "reflect" if "reflect" in wanted else "zeros"

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.sampler.steps_per_epoch)

    # ----------------------------------------------------------------- the loop
    def fit(self) -> dict[str, float]:
        """Train to ``total_steps`` (resuming first if asked); returns the test metrics."""
        if self.cfg.resume:
            self._restore()
        main = self.dist.main
        log = MetricsLog(self.run, self.step if self.cfg.resume else None, self.cfg.train.tensorboard, enabled=main)
        try:
            with (
                Stopper(self.dist, self.device, self.cfg.train.checkpoint_minutes) as self.stopper,
                TrainProgress(self.console, self.total_steps, self.step, enabled=main) as progress,
            ):
                while self.step < self.total_steps:
                    self._train_epoch(log, progress)
            test = self.evaluate(self._test_split()) if self.data.test is not None else {}
            if test:
                log.write({"step": self.step, "split": "test", **test})
        finally:
            log.close()
        return test

    def _train_epoch(self, log: MetricsLog, progress: TrainProgress) -> None:
        steps = self.sampler.steps_per_epoch
        epoch, start = divmod(self.step, steps)
        if start == 0:
            self._recluster(epoch)
        window, whole_epoch = _Window(), _Window()
        for index in self.sampler.batches(epoch, start):
            outputs = self._train_step(self.batches.training(self.data.train, index, self.step, self.generator))
            window.add(outputs, len(index))
            whole_epoch.add(outputs, len(index))
            self.step += 1
            progress.advance(self.step, epoch, self.epochs)
            stop, timed = self.stopper.poll(self.step)
            at_checkpoint = self._checkpoint_due(epoch_end=self.step % steps == 0) or timed or stop is not None
            if self.step % self.cfg.train.log_every == 0 or at_checkpoint or self.step == self.total_steps:
                self._log_window(window, log, progress, epoch)
            if at_checkpoint:
                self._save_last()
                self.stopper.checkpointed()
            if stop is not None:
                raise StopRequested(stop, self.step)
            if self.step == self.total_steps:
                break
        self._end_epoch(epoch, whole_epoch, log, progress)

    def _recluster(self, epoch: int) -> None:
        """Coupled pseudo-labels (``pseudolabel.labels=coupled``): at the start of every epoch, k-means of
        the current features of every training image (BatchNorm statistics of rank 0 on every rank, so
        all ranks find the same clusters); ``last`` keeps them, so a resumed epoch trains on its own."""
        for task in self.network.tasks.values():
            if task.coupled:
                distributed.sync_buffers(self.network, self.dist)
                features = extract_features(
                    self.network.backbone, self.network.input, self.data.train, task.taps, "avg", self.device,
                    self.sampler.share, show_progress=False,
                )[task.taps[0]]
                labels = task.recluster(features, self.cfg.seed + epoch)
                self.data.train = dataclasses.replace(self.data.train, pseudo_labels=labels)

    def _train_step(self, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        self.network.train()
        set_lr(self.optimizer, lr_at(self.cfg.train, self.step, self.total_steps))
        outputs = self.model(**inputs)
        self.optimizer.zero_grad(set_to_none=True)
        outputs["loss"].backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.network, self.step)
        return {k: v.detach() for k, v in outputs.items()}

    def _checkpoint_due(self, epoch_end: bool) -> bool:
        every = self.cfg.train.checkpoint_every
        if self.step == self.total_steps:
            return True
        return self.step % every == 0 if every > 0 else epoch_end

    def _log_window(self, window: "_Window", log: MetricsLog, progress: TrainProgress, epoch: int) -> None:
        speed = window.throughput.rate() * self.dist.world_size
        means = window.means(self.dist)
        if not math.isfinite(means["loss"]):
            raise TrainingDiverged(self._divergence(means, window))
        log.write({"step": self.step, "epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], **means, "img_per_s": speed})
        progress.show(means["loss"], speed)
        window.reset()

    def _divergence(self, means: dict[str, float], window: "_Window") -> str:
        """Which task's loss went non-finite, when, and the fix that fits: a loss that is already bad in
        the first steps points at the inputs or the task's options, a later one at the learning rate."""
        bad = [key.removesuffix("/loss") for key, value in means.items() if key.endswith("/loss") and not math.isfinite(value)]
        first = self.step - window.steps + 1
        where = f"step {first}" if first == self.step else f"steps {first}-{self.step}"
        if first <= self.cfg.train.log_every:
            advice = f"it failed from the start, so check the data and the {', '.join(bad)} options before the learning rate"
        else:
            advice = f"lower train.lr (now {self.cfg.train.lr:g}) or raise train.warmup (now {self.cfg.train.warmup:g})"
        return (
            f"the {', '.join(bad) or 'total'} loss became {means['loss']} at {where}; stopped, the last good "
            f"checkpoint is kept in {checkpoint_dir(self.run)} ({advice}, then start a new run or resume=true)"
        )

    def _end_epoch(self, epoch: int, window: "_Window", log: MetricsLog, progress: TrainProgress) -> None:
        summary = f"epoch {epoch + 1}/{self.epochs} step {self.step}  " + _format(window.means(self.dist), "train")
        if self.data.val is not None:
            val = self.evaluate(self.data.val)
            log.write({"step": self.step, "epoch": epoch, "split": "val", **val})
            summary += "  " + _format(val, "val")
            if val["loss"] < self.best_val:
                self.best_val = val["loss"]
                if self.dist.main:
                    self._save_best(val)
        progress.line(summary)

    # --------------------------------------------------------------- evaluation
    def _test_split(self) -> ImageSet:
        limit = self.cfg.eval.test_limit
        return self.data.test if limit is None else self.data.test.subset(torch.arange(min(limit, len(self.data.test))))

    @torch.no_grad()
    def evaluate(self, images: ImageSet) -> dict[str, float]:
        """Mean loss and metrics of every task on a split, without augmentation, in eval mode.

        Batches are the training batch (each rank's share of it): a larger one would raise the run's peak
        memory above training's (ResNet-18 at 500 images: +0.4 GB). Under DDP each rank evaluates its share
        of the split and the sums are added up; every rank first takes rank 0's BatchNorm statistics, the
        ones the checkpoint holds. With ``train.ema`` the Polyak average is what is evaluated."""
        distributed.sync_buffers(self.network, self.dist)
        self.network.eval()
        generator = torch.Generator(self.device).manual_seed(self.cfg.seed + 1 + self.dist.rank * RANK_SEED_STRIDE)
        window = _Window()
        with self.ema.swapped_in(self.network) if self.ema is not None else contextlib.nullcontext():
            for index in self._eval_shard(len(images)).split(self.sampler.share):
                window.add(self.network(**batches.evaluation(images, index, self.device, generator)), len(index))
        return window.means(self.dist)

    def _eval_shard(self, size: int) -> torch.Tensor:
        """Every ``world_size``-th image from this rank's offset, so every rank has some; a split smaller
        than the job is evaluated whole by every rank, which leaves the means unchanged."""
        if size < self.dist.world_size:
            return torch.arange(size)
        return torch.arange(self.dist.rank, size, self.dist.world_size)

    # -------------------------------------------------------------- checkpoints
    def _meta(self) -> dict[str, Any]:
        return {
            "format": 1,
            "version": __version__,
            "step": self.step,
            "total_steps": self.total_steps,
            "epoch": self.step // self.sampler.steps_per_epoch,
            "model": model_description(self.cfg),
            "tasks": list(self.cfg.tasks),
            "classes": self.data.classes,
            "best_val": self.best_val if math.isfinite(self.best_val) else None,
            "precision": precision(self.device),
        }

    def _save_last(self) -> None:
        rng = self._rng_states()  # a collective: every rank takes part, rank 0 writes
        if not self.dist.main:
            return
        optim, groups = optimizer_tensors(self.optimizer)
        meta = {**self._meta(), "optimizer": groups, "world_size": self.dist.world_size}
        save_checkpoint(checkpoint_dir(self.run) / "last.safetensors", {**self._weights(), **optim, **rng, **self._coupled_labels()}, meta)

    def _coupled_labels(self) -> dict[str, torch.Tensor]:
        """The current epoch's re-clustered pseudo-labels, when a task re-clusters (a resume restores them)."""
        if not any(task.coupled for task in self.network.tasks.values()):
            return {}
        return {"data.pseudo_labels": self.data.train.pseudo_labels}

    def _rng_states(self) -> dict[str, torch.Tensor]:
        """Every rank's random states: ``rng.<kind>`` for rank 0 (as in a single-process run) and
        ``rng.rank<r>.<kind>`` for the others."""
        own = {"torch": torch.get_rng_state(), "augment": self.generator.get_state()}
        if self.device.type == "cuda":
            own["cuda"] = torch.cuda.get_rng_state(self.device)
        states = {}
        for kind, state in own.items():
            for rank, part in enumerate(distributed.gather(state, self.dist, self.device)):
                states[f"{_rng_prefix(rank)}{kind}"] = part
        return states

    def _save_best(self, val: dict[str, float]) -> None:
        save_checkpoint(checkpoint_dir(self.run) / "best.safetensors", self._weights(), {**self._meta(), "val": val})

    def _weights(self) -> dict[str, torch.Tensor]:
        """The training weights (``model.*``) and, with ``train.ema``, their average (``ema.*``)."""
        averaged = self.ema.tensors() if self.ema is not None else {}
        return {**{f"model.{k}": v for k, v in self.network.state_dict().items()}, **averaged}

    def _restore(self) -> None:
        path = checkpoint_dir(self.run) / "last.safetensors"
        meta = read_meta(path)
        check_model(meta, self.cfg, path)
        load_weights(self.network, load_checkpoint(path, "model."), path)
        if self.ema is not None:
            self.ema.load(load_checkpoint(path, EMA_PREFIX))
        restore_optimizer(self.optimizer, load_checkpoint(path, "optim."), meta["optimizer"])
        self._restore_rng(load_checkpoint(path, _rng_prefix(self.dist.rank)), meta.get("world_size", 1))
        saved_labels = load_checkpoint(path, "data.")
        if "pseudo_labels" in saved_labels:
            self.data.train = dataclasses.replace(self.data.train, pseudo_labels=saved_labels["pseudo_labels"])
        self.step = meta["step"]
        self.best_val = meta["best_val"] if meta["best_val"] is not None else math.inf
        if self.dist.main:
            self.console.print(f"resumed {self.run} at step {self.step}/{self.total_steps}", soft_wrap=True)

    def _restore_rng(self, rng: dict[str, torch.Tensor], saved_world: int) -> None:
        if saved_world != self.dist.world_size:
            if self.dist.main:
                self.console.print(
                    f"[yellow]warning:[/yellow] the run was trained by {saved_world} process(es), now "
                    f"{self.dist.world_size}: data order and weights carry on, augmentation draws restart from the seed"
                )
            return
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["augment"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)


class _Window:
    """Running sums of step outputs, kept as tensors so the device is not synchronised every step.

    A NaN metric (e.g. a labeled task's accuracy on a batch with no labeled image) means "not measured
    this step": it adds nothing and is not counted, and a metric never measured in the window is not
    logged. The loss is never skipped: a non-finite loss must stop the run.
    """

    def __init__(self) -> None:
        self.throughput = Throughput()
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}
        self.count = 0
        self.steps = 0

    def add(self, outputs: dict[str, torch.Tensor], size: int) -> None:
        for key, value in outputs.items():
            value = value.detach().float()
            if key.endswith("loss"):
                measured = torch.ones_like(value)
            else:
                measured, value = (~value.isnan()).float(), torch.nan_to_num(value, nan=0.0)
            self.sums[key] = self.sums.get(key, 0) + value * size
            self.counts[key] = self.counts.get(key, 0) + measured * size
        self.count += size
        self.steps += 1
        self.throughput.add(size)

    def means(self, dist: Dist) -> dict[str, float]:
        """Means over every rank's measured images: one all-reduce of the stacked sums and counts."""
        keys = list(self.sums)
        totals = torch.stack([self.sums[k] for k in keys] + [self.counts[k] for k in keys])  # (2K,)
        totals = distributed.all_reduce_sum(totals, dist)
        sums, counts = totals[: len(keys)], totals[len(keys) :]
        return {key: (sums[i] / counts[i]).item() for i, key in enumerate(keys) if counts[i] > 0}


def _rng_prefix(rank: int) -> str:
    return "rng." if rank == 0 else f"rng.rank{rank}."


def _format(metrics: dict[str, float], prefix: str) -> str:
    return "  ".join(f"{prefix}/{k} {v:.4f}" for k, v in metrics.items())
