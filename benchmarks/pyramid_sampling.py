"""Sampling time per image: the Pyramid PixelCNN against the single-scale PixelCNN at the same resolution
(Kolesnikov & Lampert 2017, §4.4), all at the sizes of their paper presets, timed in one process.

Three models, random weights (a draw's cost does not depend on them), 32 px images:
- ``pixelcnn++``: ``configs/pixelcnn-cifar10.yaml``, PixelCNN++'s U-Net (3 resolutions x 5 blocks x 160
  filters, the thesis's baseline); its downsampling rules out the cached sampler, so it is sampled
  naively, one full pass per pixel, as PixelCNN++ is;
- ``one-scale``: the same preset with ``pixelcnn.scales=1 pixelcnn.blocks=12``, gated stacks at one
  resolution that the cached sampler (``pixelcnn/sampling.py``) can draw from;
- ``pyramid``: ``configs/pyramid-pixelcnn-cifar10.yaml``, factor by factor (8x8, then 16x16 and 32x32
  given the image below).
The cached sampler's time is measured by drawing; the naive sampler's from timed passes x their exact
count (``naive_seconds``). Ratios are against the pyramid with the same sampler and with its cached one.

    python benchmarks/pyramid_sampling.py [--batch 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from chromaproxy.config import load_config
from chromaproxy.network import Network
from chromaproxy.pixelcnn.image_models import PlainPixelCNN

PLAIN = "configs/pixelcnn-cifar10.yaml"
MODELS = {
    "pixelcnn++": (PLAIN, []),
    "one-scale": (PLAIN, ["pixelcnn.scales=1", "pixelcnn.blocks=12"]),
    "pyramid": ("configs/pyramid-pixelcnn-cifar10.yaml", []),
}


def image_model(preset: str, overrides: list[str]):
    cfg = load_config(preset, overrides)
    torch.manual_seed(0)
    return Network.from_config(cfg, num_classes=10).tasks[cfg.tasks[0]].model.eval()


@torch.no_grad()
def cached_seconds(model, batch: int, seed: int) -> float:
    start = time.perf_counter()
    model.sample(batch, 32, torch.Generator().manual_seed(seed))
    return time.perf_counter() - start


def naive_work(model, batch: int):
    """The naive sampler's exact work: one full pass of a factor's network per pixel of that factor's image.
    Yields (one pass as a function of the image, side, passes); the pyramid's embeddings run once per stage."""
    if isinstance(model, PlainPixelCNN):
        yield partial(model.net, cond=None), 32, 32 * 32
        return
    side = 32 // 2 ** len(model.stages)
    yield partial(model.base, cond=None), side, side * side
    for embedding, stage in zip(model.embeddings, model.stages):
        yield embedding, side, 1
        cond = embedding(torch.zeros(batch, 3, side, side))
        side *= 2
        yield partial(stage, cond=cond), side, side * side


@torch.no_grad()
def naive_seconds(model, batch: int, seed: int) -> float:
    """The naive sampler's time: Σ over ``naive_work`` of passes x the timed time of one pass. Running it
    outright would take hours at paper size on a CPU, with the same result."""
    torch.manual_seed(seed)
    return sum(passes * _pass_seconds(run, batch, side) for run, side, passes in naive_work(model, batch))


@torch.no_grad()
def naive_flops(model) -> float:
    """Floating-point operations of the naive sampler per image, counted by torch's flop counter."""
    total = 0.0
    for run, side, passes in naive_work(model, 1):
        with FlopCounterMode(display=False) as counter:
            run(torch.zeros(1, 3, side, side))
        total += passes * counter.get_total_flops()
    return total


def _pass_seconds(run, batch: int, side: int, passes: int = 3) -> float:
    x = torch.rand(batch, 3, side, side) * 2 - 1
    run(x)  # warm-up
    start = time.perf_counter()
    for _ in range(passes):
        run(x)
    return (time.perf_counter() - start) / passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4, help="images drawn at once")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    models = {name: image_model(*spec) for name, spec in MODELS.items()}
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch}, 32 px; parameters: " + ", ".join(
              f"{name} {sum(p.numel() for p in m.parameters()) / 1e6:.2f} M" for name, m in models.items()))
    flops = {name: naive_flops(m) for name, m in models.items()}
    print("naive sampler GFLOP/image: " + ", ".join(f"{name} {f / 1e9:,.0f}" for name, f in flops.items())
          + "; pixelcnn++ / pyramid = " + f"{flops['pixelcnn++'] / flops['pyramid']:.1f}x, one-scale / pyramid = "
          + f"{flops['one-scale'] / flops['pyramid']:.1f}x")
    runs = {("naive", name): naive_seconds for name in models}
    runs.update({("cached", name): cached_seconds for name in ("one-scale", "pyramid")})
    seconds = {}
    for (sampler, name), timer in runs.items():
        times = [timer(models[name], args.batch, r) / args.batch for r in range(args.repeats)]
        seconds[sampler, name] = statistics.median(times)
        print(f"{sampler:>6} {name:>10}: {seconds[sampler, name]:8.2f} s/image  (" + ", ".join(f"{t:.2f}" for t in times) + ")")
    for sampler, name in runs:
        if name != "pyramid":
            print(f"{sampler} {name} / pyramid: same sampler {seconds[sampler, name] / seconds[sampler, 'pyramid']:.1f}x, "
                  f"pyramid cached {seconds[sampler, name] / seconds['cached', 'pyramid']:.1f}x")


if __name__ == "__main__":
    main()
