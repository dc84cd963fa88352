"""What every protocol needs: the frozen backbone of a run (or a random one), the labeled splits, and a
cache of pooled features per (split, pooling) so several protocols share one extraction.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from chromaproxy.config import apply_overrides, apply_preset, load_config, save_config
from chromaproxy.data.sources import load_source
from chromaproxy.data.splits import held_out_test
from chromaproxy.data.types import UNLABELED, ImageSet
from chromaproxy.device import resolve_device
from chromaproxy.errors import UserError
from chromaproxy.eval.features import extract_features
from chromaproxy.io import atomic_write_text, read_run_config
from chromaproxy.network import Network, load_backbone

RANDOM_MARKER = "random.json"  # marks a random-init reference directory (no checkpoints by design)


@dataclass
class EvalSession:
    run: Path
    cfg: Any
    network: Network
    device: torch.device
    train: ImageSet
    test: ImageSet
    classes: list[str]
    weights: str  # "checkpoints/last.safetensors", or "random (seed N)"
    checkpoint: str | None = None  # "last" or "best"; None for a random-init reference
    cache: dict[tuple[str, str], dict[str, torch.Tensor]] = field(default_factory=dict)
    pictures: list[Path] = field(default_factory=list)  # images a protocol wrote, for the 'wrote …' line
    manifest_extra: dict[str, Any] = field(default_factory=dict)  # manifest keys a protocol with its own data sets

    @property
    def taps(self) -> list[str]:
        return self.network.backbone.resolve_taps(self.cfg.eval.taps if self.cfg.eval.taps != ["all"] else "all")

    def features(self, split: str, pooling: str) -> dict[str, torch.Tensor]:
        """Pooled features of every evaluated tap on ``split`` ("train" or "test"), extracted once."""
        key = (split, pooling)
        if key not in self.cache:
            images = self.train if split == "train" else self.test
            self.cache[key] = extract_features(
                self.network.backbone, self.network.input, images, self.taps, pooling, self.device,
                self.cfg.eval.batch_size, description=f"{split} features ({pooling})",
            )
        return self.cache[key]

    def common_manifest(self) -> dict[str, Any]:
        return {
            "run": str(self.run),
            "weights": self.weights,
            "dataset": self.cfg.data.name,
            "splits": {"train": len(self.train), "test": len(self.test)},
            "input": self.cfg.model.input,
            "model": {"name": self.cfg.model.name, "width": self.cfg.model.width, "blocks": self.cfg.model.blocks},
            "taps": self.taps,
            "seed": self.cfg.seed,
        }


def open_run(run: Path, overrides: list[str], checkpoint: str = "last", preset: Path | None = None) -> EvalSession:
    """Load a run's config and weights (or rebuild a random reference); then an evaluation preset
    (``configs/eval-*.yaml``) and ``key=value`` overrides change the evaluation keys."""
    cfg = read_run_config(run)
    if preset is not None:
        _apply_eval_preset(cfg, preset)
    apply_overrides(cfg, overrides)
    if (run / RANDOM_MARKER).is_file():
        return _random_session(run, cfg)
    network = load_backbone(run, checkpoint, cfg)
    return _session(run, cfg, network, f"checkpoints/{checkpoint}.safetensors", checkpoint)


def open_random(config: Path, overrides: list[str], out: Path, preset: Path | None = None) -> EvalSession:
    """A seeded, randomly initialised backbone of the preset; ``out`` becomes a run directory that later
    commands (evaluate, report) reopen by rebuilding the same weights from the seed."""
    cfg = load_config(config)
    if preset is not None:
        _apply_eval_preset(cfg, preset)
    apply_overrides(cfg, overrides)
    out.mkdir(parents=True, exist_ok=True)
    cfg.out = str(out)
    save_config(cfg, out / "config.yaml")
    atomic_write_text(out / RANDOM_MARKER, json.dumps({"seed": cfg.seed}) + "\n")
    return _random_session(out, cfg)


def _apply_eval_preset(cfg: Any, preset: Path) -> None:
    """An evaluation preset may set evaluation keys only: it must not change what was trained."""
    training, name = copy.deepcopy((cfg.model, cfg.data, cfg.tasks, cfg.train)), cfg.preset
    apply_preset(cfg, preset)
    cfg.preset = name
    if (cfg.model, cfg.data, cfg.tasks, cfg.train) != training:
        raise UserError(f"{preset} changes model/data/tasks/train keys; an evaluation preset sets eval.* and protocol keys only")


def _random_session(run: Path, cfg: Any) -> EvalSession:
    torch.manual_seed(cfg.seed)
    network = Network.backbone_only(cfg)
    return _session(run, cfg, network, f"random (seed {cfg.seed})")


def _session(run: Path, cfg: Any, network: Network, weights: str, checkpoint: str | None = None) -> EvalSession:
    device = resolve_device(cfg.device)
    network.to(device).eval()
    source = load_source(
        cfg.data.name, root=cfg.data.root, path=cfg.data.path, image_size=cfg.data.image_size,
        skip_bad=cfg.data.skip_bad, download=cfg.data.download,
    )
    source, _ = held_out_test(source, cfg.data.test_fraction, cfg.seed)
    if source.test is None:
        raise UserError(
            f"data.name={cfg.data.name} has no test split; give the folder train/ and test/ sub-folders, "
            "or pretrain with data.test_fraction=0.1 to hold out a seeded tenth of its images"
        )
    train = _labeled(source.train, cfg.eval.train_limit, "train")
    test = _labeled(source.test, cfg.eval.test_limit, "test")
    return EvalSession(run, cfg, network, device, train, test, source.train.classes, weights, checkpoint)


def _labeled(images: ImageSet, limit: int | None, split: str) -> ImageSet:
    index = torch.nonzero(images.labels != UNLABELED).flatten()
    if len(index) == 0:
        raise UserError(f"the {split} split has no labels; evaluation protocols need a labeled dataset")
    return images.subset(index[:limit] if limit is not None else index)
