"""Device choice, the mixed-precision context (bf16 autocast on CUDA) and the memory layout.

Every network and batch is kept channels_last (NHWC), on CPUs as well as GPUs: oneDNN's convolutions run
faster in that layout on this project's 2-core CPU too, by 1.1-1.3x per training step for every
convolutional backbone and 1.2-1.6x end to end for the quick presets, never slower (the PixelCNN and PIC
presets are unchanged); benchmarks/RESULTS.md, "channels_last on the CPU".
"""

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


MEMORY_FORMAT = torch.channels_last
