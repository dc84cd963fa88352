"""channels_last against the default contiguous layout on the machine at hand, per quick preset and backbone.

chromaproxy keeps networks and batches channels_last everywhere (``chromaproxy.device.MEMORY_FORMAT``);
this benchmark is the measurement behind that choice on a CPU. For each case it times the compute-only
training step of throughput.py's part (a) — ``Network.forward`` (make_batch, input, backbone, head, loss)
+ backward + optimizer step on pre-made augmented CIFAR-10 batches — once with every tensor contiguous
(NCHW) and once channels_last (NHWC), alternated AB BA AB, and prints the median img/s of each and their
ratio. The layout is switched by rebinding ``MEMORY_FORMAT`` where the network and throughput.py read it.

    CHROMAPROXY_DATA=/path/to/data python benchmarks/memory_layout.py [--cases colorization,nin] [--steps 8]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from pathlib import Path

import torch

import chromaproxy.network
import throughput
from chromaproxy.config import load_config
from chromaproxy.device import resolve_device
from chromaproxy.models import BACKBONES

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = ["colorization", "rotation", "supervised", "sesemi-flips", "aet-projective", "pic", "pixelcnn"]
DEFAULT_BACKBONES = ["convnet13", "resnet18", "wrn28_2"]  # shake26_2x96d too slow here by default


def case_config(case: str, root: str | None) -> object:
    """A quick preset by its name, or the supervised quick preset with ``case`` as its backbone."""
    overrides = [f"data.root={root}"] if root else []
    if case in BACKBONES:
        return load_config(CONFIGS / "supervised-cifar10-quick.yaml", [f"model.name={case}", "model.width=1.0", *overrides])
    return load_config(CONFIGS / f"{case}-cifar10-quick.yaml", overrides)


@contextlib.contextmanager
def layout(memory_format: torch.memory_format):
    kept = chromaproxy.network.MEMORY_FORMAT
    chromaproxy.network.MEMORY_FORMAT = throughput.MEMORY_FORMAT = memory_format
    try:
        yield
    finally:
        chromaproxy.network.MEMORY_FORMAT = throughput.MEMORY_FORMAT = kept


def alternated_rates(case: str, settings: dict, args: argparse.Namespace) -> list[float]:
    """Median compute-only img/s of ``case`` under each of ``settings`` ({name: context manager factory}),
    timed in alternated rounds (AB BA AB …) so that a drifting host speed hits every setting alike."""
    cfg = case_config(case, args.root)
    batches, num_classes = throughput.premade_batches(cfg, 4, resolve_device(cfg.device))
    rates: dict[str, list[float]] = {name: [] for name in settings}
    order = list(settings)
    for r in range(args.rounds):
        for name in order[::-1] if r % 2 else order:
            with settings[name]():
                kept = [(rgb.contiguous(memory_format=chromaproxy.network.MEMORY_FORMAT), labels) for rgb, labels in batches]
                rates[name].append(throughput.compute_rate(cfg, kept, num_classes, 1, args.steps))
    return [statistics.median(rates[name]) for name in order]


def bench_case(case: str, args: argparse.Namespace) -> tuple[float, float]:
    """Median img/s (contiguous, channels_last) over ``--rounds`` alternated rounds."""
    contiguous, channels_last = alternated_rates(case, {
        "contiguous": lambda: layout(torch.contiguous_format),
        "channels_last": lambda: layout(torch.channels_last),
    }, args)
    return contiguous, channels_last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(PRESETS + DEFAULT_BACKBONES), help="quick preset names and/or any backbone name")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round and layout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default=None, help="data root (default: $CHROMAPROXY_DATA)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps x {args.rounds} rounds")
    print("| case | contiguous img/s | channels_last img/s | channels_last / contiguous |")
    print("|---|---|---|---|")
    for case in args.cases.split(","):
        contiguous, channels_last = bench_case(case, args)
        print(f"| {case} | {contiguous:.1f} | {channels_last:.1f} | {channels_last / contiguous:.2f} |", flush=True)


if __name__ == "__main__":
    main()
