"""bf16 autocast against float32 on the CPU at hand, per quick preset and backbone.

chromaproxy trains and evaluates under bf16 autocast on CPUs with native bf16 (AMX or AVX-512 BF16) and in
float32 on other CPUs (``chromaproxy.device.precision``); this benchmark is the measurement behind that
choice. For each case it times memory_layout.py's compute-only training step (throughput.py's part (a):
``Network.forward`` + backward + optimizer step on pre-made augmented CIFAR-10 batches, channels_last)
once under each precision, alternated AB BA AB, and prints the median img/s of each and their ratio. The
precision is switched through ``CHROMAPROXY_PRECISION``, which ``chromaproxy.device.precision`` reads at
every autocast.

    CHROMAPROXY_DATA=/path/to/data python benchmarks/precision.py [--cases colorization,nin] [--steps 8]
"""

from __future__ import annotations

import argparse
import contextlib
import os

import torch

import memory_layout
from chromaproxy.device import cpu_has_native_bf16


@contextlib.contextmanager
def forced(precision: str):
    """``CHROMAPROXY_PRECISION=precision`` inside the block, the caller's setting (or none) after it."""
    kept = os.environ.get("CHROMAPROXY_PRECISION")
    os.environ["CHROMAPROXY_PRECISION"] = precision
    try:
        yield
    finally:
        if kept is None:
            del os.environ["CHROMAPROXY_PRECISION"]
        else:
            os.environ["CHROMAPROXY_PRECISION"] = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(memory_layout.PRESETS + memory_layout.DEFAULT_BACKBONES),
                        help="quick preset names and/or any backbone name")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round and precision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default=None, help="data root (default: $CHROMAPROXY_DATA)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}, "
          f"{args.steps} steps x {args.rounds} rounds")
    print("| case | fp32 img/s | bf16 img/s | bf16 / fp32 |")
    print("|---|---|---|---|")
    for case in args.cases.split(","):
        fp32, bf16 = memory_layout.alternated_rates(case, {"fp32": lambda: forced("fp32"), "bf16": lambda: forced("bf16")}, args)
        print(f"| {case} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f} |", flush=True)


if __name__ == "__main__":
    main()
