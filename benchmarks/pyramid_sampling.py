"""Sampling time per image: the Pyramid PixelCNN against the single-scale PixelCNN at the same resolution
(Kolesnikov & Lampert 2017, §4.4), both at the sizes of their paper presets, timed in one process.

The two models are built from ``configs/pixelcnn-cifar10.yaml`` and ``configs/pyramid-pixelcnn-cifar10.yaml``
(random weights: a draw's cost does not depend on them) and draw the same number of 32 px images with the
cached sampler (``pixelcnn/sampling.py``), the pyramid factor by factor (8x8, then 16x16 and 32x32 given
the image below). ``--naive`` also gives the naive sampler's time (one full network pass per pixel, the
way PixelCNN++ is usually sampled) from timed passes (``naive_seconds``).

    python benchmarks/pyramid_sampling.py [--batch 4] [--repeats 2] [--naive]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from chromaproxy.config import load_config
from chromaproxy.network import Network
from chromaproxy.pixelcnn.image_models import PlainPixelCNN

PRESETS = {"single-scale": "configs/pixelcnn-cifar10.yaml", "pyramid": "configs/pyramid-pixelcnn-cifar10.yaml"}


def image_model(preset: str):
    cfg = load_config(preset)
    torch.manual_seed(0)
    return Network.from_config(cfg, num_classes=10).tasks[cfg.tasks[0]].model.eval()


@torch.no_grad()
def cached_seconds(model, batch: int, seed: int) -> float:
    start = time.perf_counter()
    model.sample(batch, 32, torch.Generator().manual_seed(seed))
    return time.perf_counter() - start


@torch.no_grad()
def naive_seconds(model, batch: int, seed: int) -> float:
    """The naive sampler's time, from its exact work: it runs one full pass of a factor's network per pixel
    of that factor's image, so its time is Σ over factors of (pixels x the time of one pass), each pass
    timed here (the pyramid's embeddings, run once per stage, added as measured). Running it outright
    would take hours at paper size on a CPU, with the same result."""
    torch.manual_seed(seed)
    if isinstance(model, PlainPixelCNN):
        return 32 * 32 * _pass_seconds(model.net, None, batch, 32)
    side = 32 // 2 ** len(model.stages)
    total = side * side * _pass_seconds(model.base, None, batch, side)
    for embedding, stage in zip(model.embeddings, model.stages):
        start = time.perf_counter()
        cond = embedding(torch.zeros(batch, 3, side, side))
        total += time.perf_counter() - start
        side *= 2
        total += side * side * _pass_seconds(stage, cond, batch, side)
    return total


def _pass_seconds(net, cond, batch: int, side: int, passes: int = 3) -> float:
    x = torch.rand(batch, 3, side, side) * 2 - 1
    net(x, cond)  # warm-up
    start = time.perf_counter()
    for _ in range(passes):
        net(x, cond)
    return (time.perf_counter() - start) / passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4, help="images drawn at once")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--naive", action="store_true", help="also the naive sampler's time, from timed passes")
    args = parser.parse_args()
    models = {name: image_model(preset) for name, preset in PRESETS.items()}
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch}, 32 px; parameters: " + ", ".join(
              f"{name} {sum(p.numel() for p in m.parameters()) / 1e6:.2f} M" for name, m in models.items()))
    samplers = {"cached": cached_seconds, **({"naive": naive_seconds} if args.naive else {})}
    for sampler_name, sampler in samplers.items():
        times = {name: [sampler(m, args.batch, r) / args.batch for r in range(args.repeats)] for name, m in models.items()}
        medians = {name: statistics.median(t) for name, t in times.items()}
        print(f"{sampler_name}: s/image " + ", ".join(f"{name} {s:.2f}" for name, s in medians.items())
              + f"; single-scale / pyramid = {medians['single-scale'] / medians['pyramid']:.1f}x")


if __name__ == "__main__":
    main()
