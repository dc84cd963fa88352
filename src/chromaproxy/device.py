"""Device choice, the mixed-precision context (bf16 autocast) and the memory layout.

bf16 autocast runs on CUDA, and on CPUs whose cores multiply bf16 natively: Intel AMX (Sapphire Rapids and
later) or AVX-512 BF16 (e.g. AMD Zen 4/5 EPYC, Intel Cooper Lake). There oneDNN's bf16 convolutions make the
quick presets' training steps 1.5-2.6x faster than float32 on 2 cores, with the same kNN quality
(benchmarks/RESULTS.md, "bf16 autocast on an AMX CPU" and "... on an AVX-512 BF16 CPU": colorization
2.1x on either, IIC 2.6x on a Zen 5 EPYC). CPUs without such instructions (AVX2, or AVX-512 without BF16,
such as the EPYC sandbox the earliest results came from) would emulate bf16 and run slower, so they stay
in float32. ``CHROMAPROXY_PRECISION=fp32`` (or ``bf16``) overrides the choice for a process, e.g. to compare
the two; the choice is printed when a run starts.

Every network and batch is kept channels_last (NHWC), on CPUs as well as GPUs: oneDNN's convolutions run
faster in that layout on this project's 2-core CPU too, by 1.1-1.3x per training step for every
convolutional backbone and 1.2-1.6x end to end for the quick presets, never slower (the PixelCNN and PIC
presets are unchanged); benchmarks/RESULTS.md, "channels_last on the CPU".
"""

from __future__ import annotations

import contextlib
import functools

import torch

from chromaproxy.environment import environment_choice
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


PRECISIONS = ("auto", "bf16", "fp32")


def precision(device: torch.device) -> str:
    """``bf16`` or ``fp32``: what :func:`autocast` runs on ``device`` (see the module docstring)."""
    wanted = environment_choice("CHROMAPROXY_PRECISION", PRECISIONS)
    if wanted != "auto":
        return wanted
    return "bf16" if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()) else "fp32"


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether the CPU multiplies bf16 in hardware (AMX or AVX-512 BF16), which oneDNN's bf16 kernels use."""
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("amx_bf16", False) or capabilities.get("avx512_bf16", False))


def autocast(device: torch.device):
    """bf16 autocast where :func:`precision` says so (no loss scaling needed with bf16), else a no-op."""
    if precision(device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


MEMORY_FORMAT = torch.channels_last
