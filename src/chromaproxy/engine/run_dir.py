"""The run directory: created once, never overwritten, and checked against the config on resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chromaproxy.config import save_config, to_dict
from chromaproxy.errors import UserError
from chromaproxy.io import checkpoint_dir, read_run_config

# Keys that may differ between a run and its resumption: they do not change what is computed
# (``pipeline.*`` only tells ``chromaproxy pipeline`` what to do around the run).
_RESUME_FREE = {"resume", "device", "out", "train.log_every", "train.tensorboard"}
_RESUME_FREE_SECTIONS = {"pipeline"}


def has_checkpoint(run: Path) -> bool:
    """Whether ``run`` ever wrote its first checkpoint (a folder without one counts as not started)."""
    return (checkpoint_dir(run) / "last.safetensors").is_file()


def open_run_dir(cfg: Any) -> Path:
    """``plan_run_dir`` then ``start_run_dir``: the run directory, ready for a ``Trainer``."""
    run, _ = plan_run_dir(cfg)
    start_run_dir(cfg, run)
    return run


def default_out(cfg: Any) -> str:
    """``cfg.out``, set to ``runs/<preset>-<time>`` when the user gave none."""
    if cfg.out is None:
        cfg.out = f"runs/{cfg.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    return cfg.out


def plan_run_dir(cfg: Any) -> tuple[Path, str | None]:
    """Where the run goes (``cfg.out``), checked but not yet written, and a note when a folder is taken over.

    A folder without ``checkpoints/last.safetensors`` never trained (it failed or was killed before its first
    checkpoint), so it counts as not started: a new run reuses it, and ``resume=true`` starts it from step 0
    instead of refusing. Either way one command always works, and no folder becomes a dead end.
    """
    run = Path(default_out(cfg))
    if has_checkpoint(run):
        if not cfg.resume:
            raise UserError(
                f"{run} already exists; add resume=true to continue it, or choose another out=DIR (runs are never overwritten)"
            )
        _check_resumable(run, cfg)
        return run, None
    if run.exists() and any(run.iterdir()) and not (run / "config.yaml").is_file():
        raise UserError(f"{run} exists and is not a run directory (no config.yaml); choose another out=DIR")
    if cfg.resume and not run.exists():
        raise UserError(f"nothing to resume: {run} does not exist (check the path, or drop resume=true to start a new run)")
    note = None
    if run.exists() and any(run.iterdir()):
        note = f"{run} holds no checkpoint yet (its run stopped before the first one): starting it from step 0"
    cfg.resume = False
    return run, note


def start_run_dir(cfg: Any, run: Path) -> None:
    """Write the run's config and its checkpoints folder (a resumed run keeps its own)."""
    if cfg.resume:
        return
    checkpoint_dir(run).mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")


def config_changes(run: Path, cfg: Any) -> list[tuple[str, Any, Any]]:
    """(key, saved value, value now) for every key that changes what ``run`` computes, sorted by key."""
    saved = _flatten(to_dict(read_run_config(run)))
    now = _flatten(to_dict(cfg))
    free = {k for k in saved.keys() | now.keys() if k in _RESUME_FREE or k.split(".")[0] in _RESUME_FREE_SECTIONS}
    changed = sorted(k for k in saved.keys() | now.keys() if k not in free and saved.get(k) != now.get(k))
    return [(key, saved.get(key), now.get(key)) for key in changed]


def _check_resumable(run: Path, cfg: Any) -> None:
    changed = config_changes(run, cfg)
    if changed:
        key, saved, now = changed[0]
        raise UserError(
            f"cannot resume {run}: {key} was {saved!r}, now {now!r} "
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
