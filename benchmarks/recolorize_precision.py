"""Color-S4L's recolorization pass in float32 against bf16 autocast: speed and how much the colours move.

``chromaproxy.inference.recolorize`` decodes the colorizer's head at every pixel of every training image
once per Color-S4L run (50,000 images for CIFAR-10). This times that pass on the first ``--images``
training images under each precision, alternated fp32 bf16 fp32 bf16, and prints the median images/s of
each, their ratio, the projected time for 50,000 images, and how far the bf16 colours are from the float32
ones (mean and 99th percentile of |Δab| in CIELAB units, and the share of uint8 RGB values that differ).

    CHROMAPROXY_DATA=/path/to/data python benchmarks/recolorize_precision.py --colorizer runs/color-quick
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from chromaproxy.color import rgb_to_lab, split_lab
from chromaproxy.data.augment import to_float
from chromaproxy.data.cifar import CIFAR10, load_cifar
from chromaproxy.data.sources import resolve_root
from chromaproxy.device import cpu_has_native_bf16
from chromaproxy.inference.recolorize import recolorize
from precision import forced


def timed(colorizer: Path, images, precision: str) -> tuple[float, torch.Tensor]:
    with forced(precision):
        start = time.perf_counter()
        out = recolorize(colorizer, images, torch.device("cpu"), progress=False)
        return len(images) / (time.perf_counter() - start), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--colorizer", required=True, help="a colorization run directory")
    parser.add_argument("--images", type=int, default=2048, help="training images per timed pass")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", default=None, help="data root (default: $CHROMAPROXY_DATA)")
    args = parser.parse_args()
    train = load_cifar(CIFAR10, resolve_root(args.root), download=False, progress=False).train
    images = train.subset(torch.arange(args.images))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}, "
          f"{args.images} images x {args.rounds} rounds")
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    outputs = {}
    for _ in range(args.rounds):
        for precision in rates:
            rate, outputs[precision] = timed(Path(args.colorizer), images, precision)
            rates[precision].append(rate)
    fp32, bf16 = (statistics.median(rates[p]) for p in ("fp32", "bf16"))
    ab32, ab16 = (split_lab(rgb_to_lab(to_float(outputs[p])))[1] for p in ("fp32", "bf16"))
    moved = (ab16 - ab32).abs()
    changed = (outputs["bf16"] != outputs["fp32"]).float().mean().item()
    print("| precision | images/s | 50,000 images |")
    print("|---|---|---|")
    for name, rate in (("fp32", fp32), ("bf16", bf16)):
        print(f"| {name} | {rate:.1f} | {50_000 / rate / 60:.1f} min |")
    print(f"bf16 / fp32 speed: {bf16 / fp32:.2f}; |Δab| bf16 vs fp32: mean {moved.mean():.2f}, "
          f"99th percentile {moved.quantile(0.99):.2f}; uint8 values changed: {100 * changed:.1f} %")


if __name__ == "__main__":
    main()
