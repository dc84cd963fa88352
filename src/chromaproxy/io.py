"""Files every command shares: atomic text writes and reading a run directory's saved config.

Kept apart from training (``engine``) and from evaluation, which both write results into a run and both
reopen runs; neither needs the other for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from chromaproxy.errors import UserError


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name, fsync, rename into place: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def checkpoint_dir(run: Path) -> Path:
    return run / "checkpoints"


def read_run_config(run: Path) -> Any:
    """The resolved config a run saved (``run/config.yaml``), checked like any other config."""
    from chromaproxy.config import config_from_dict

    path = run / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run} is not a run directory (no config.yaml); pass the folder 'chromaproxy pretrain' wrote")
    return config_from_dict(yaml.safe_load(path.read_text()), source=str(path))
