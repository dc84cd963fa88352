"""glibc malloc settings that keep a training process's freed memory for its next step.

On the CPU, every activation of a step is a large allocation, which glibc serves with ``mmap`` and gives
back to the kernel when it is freed; the next step maps it again and the kernel zeroes each page on first
touch. The quick IIC preset's 10 epochs in float32 on 2 cores thereby took 202 million minor page
faults and a fifth of the process's CPU time in the kernel. Telling glibc to serve every allocation from
its heap (``M_MMAP_MAX = 0``) and to keep up to 2 GiB of freed heap (``M_TRIM_THRESHOLD``) reuses the
pages instead: the quick presets' training runs 1.06x (colorization), 1.38x (IIC) and 1.46x (rotation)
faster, for a peak memory 3-28 % higher (benchmarks/RESULTS.md, "bf16 autocast on an AVX-512 BF16 CPU,
keeping freed memory", part (b)). This is what the jemalloc or tcmalloc that PyTorch's CPU tuning guide
preloads would do, without a library to install or an ``LD_PRELOAD`` to set.

``chromaproxy`` applies it when the command starts; ``CHROMAPROXY_MALLOC=system`` leaves glibc's defaults
(e.g. to compare the two, or where memory is tight). On other C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import platform

from chromaproxy.environment import environment_choice

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_MAX = -4
KEPT_BYTES = 2**31 - 1  # mallopt takes an int: the most freed heap it can be told to keep
CHOICES = ("keep", "system")


def keep_freed_memory() -> bool:
    """Apply the settings unless ``CHROMAPROXY_MALLOC=system``; True when glibc took them."""
    if environment_choice("CHROMAPROXY_MALLOC", CHOICES) == "system" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_BYTES))
