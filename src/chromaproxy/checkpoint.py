"""Checkpoints as safetensors: no pickle, so loading a checkpoint can never run code.

A checkpoint is ONE safetensors file, written to a temporary name and renamed into place, so a run killed
at any moment leaves either the previous checkpoint or the new one, never a torn mix. It holds the
network's weights under ``model.``; a resumable ``last`` checkpoint also holds the optimizer state under
``optim.`` and the RNG states under ``rng.``. The JSON metadata (step, epoch, model description, optimizer
hyper-parameters, …) lives in the safetensors header, which is authoritative; ``<name>.json`` beside it
is a readable copy for people and tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from chromaproxy.errors import UserError
from chromaproxy.io import atomic_write_text

_META_KEY = "chromaproxy"


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and ``meta`` to ``path`` (a ``.safetensors`` file) atomically, plus a JSON copy."""
    save_tensors(path, tensors, {_META_KEY: json.dumps(meta)})
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Any safetensors file, written to a temporary name, fsynced and renamed into place: a command killed
    while writing leaves the previous file or none, never a torn one that the next command would trip on."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(plain, str(tmp), metadata=metadata)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata of a checkpoint, read from its safetensors header only (no tensors loaded)."""
    with _open(path) as handle:
        raw = (handle.metadata() or {}).get(_META_KEY)
    if raw is None:
        raise UserError(f"{path} is a safetensors file but not a chromaproxy checkpoint (no '{_META_KEY}' metadata)")
    return json.loads(raw)


def load_checkpoint(path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint whose names start with ``prefix`` (prefix removed)."""
    with _open(path) as handle:
        return {k[len(prefix):]: handle.get_tensor(k) for k in handle.keys() if k.startswith(prefix)}


def _open(path: Path):
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (a run writes checkpoints/last.safetensors after its first epoch)")
    try:
        return safe_open(str(path), framework="pt")
    except (SafetensorError, OSError) as err:
        raise UserError(f"{path} is not a readable safetensors checkpoint ({err}); delete it or use another run") from None


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Split an optimizer state dict into named tensors and its JSON-able parameter groups."""
    state = optimizer.state_dict()
    tensors = {
        f"optim.{index}.{name}": value
        for index, slots in state["state"].items()
        for name, value in slots.items()
        if isinstance(value, torch.Tensor)
    }
    return tensors, state["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    """Inverse of ``optimizer_tensors`` (``tensors`` without the ``optim.`` prefix)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, slot = name.split(".", 1)
        state.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
