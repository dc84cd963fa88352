"""The run directory: created once, never overwritten, and checked against the config on resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from chromaproxy.config import save_config, to_dict
from chromaproxy.errors import UserError

# Keys that may differ between a run and its resumption: they do not change what is computed.
_RESUME_FREE = {"resume", "device", "out", "train.log_every", "train.tensorboard"}


def checkpoint_dir(run: Path) -> Path:
    return run / "checkpoints"


def open_run_dir(cfg: Any) -> Path:
    """Create ``cfg.out`` for a new run, or check that it can be resumed; returns its path."""
    if cfg.out is None:
        cfg.out = f"runs/{cfg.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = Path(cfg.out)
    if cfg.resume:
        _check_resumable(run, cfg)
        return run
    if run.exists() and any(run.iterdir()):
        raise UserError(
            f"{run} already exists; add resume=true to continue it, or choose another out=DIR (runs are never overwritten)"
        )
    checkpoint_dir(run).mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    return run


def _check_resumable(run: Path, cfg: Any) -> None:
    if not (checkpoint_dir(run) / "last.safetensors").is_file():
        raise UserError(f"nothing to resume in {run}: no checkpoints/last.safetensors yet (drop resume=true to start afresh)")
    saved = _flatten(yaml.safe_load((run / "config.yaml").read_text()))
    now = _flatten(to_dict(cfg))
    changed = sorted(k for k in saved.keys() | now.keys() if k not in _RESUME_FREE and saved.get(k) != now.get(k))
    if changed:
        key = changed[0]
        raise UserError(
            f"cannot resume {run}: {key} was {saved.get(key)!r}, now {now.get(key)!r} "
            f"({len(changed)} key(s) differ); resume with: chromaproxy pretrain {run}/config.yaml resume=true"
        )


def _flatten(mapping: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
