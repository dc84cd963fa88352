"""Device choice and the mixed-precision context: CUDA with bf16 autocast and channels_last when present."""

from __future__ import annotations

import contextlib

import torch

from chromaproxy.errors import UserError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name} asked for, but this machine has no CUDA GPU; use device=cpu or device=auto")
    return device


def autocast(device: torch.device):
    """bf16 autocast on CUDA (no loss scaling needed); full precision on CPU, where it is not faster."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format
