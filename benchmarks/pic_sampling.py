"""PIC's chroma sampling: the cached generator against the naive per-pixel loop, same network, same noise.

The naive loop re-runs the conditional PixelCNN++ over the whole chroma grid for each of its H'·W' pixels;
the cached one (``pixelcnn/sampling.py``) computes each layer once per pixel. Both draw the same images
from the same uniform numbers, which this script checks (``identical``) before it reports the ratio of
the times, measured in the same process. The conditioning map g(L) is random: it is computed once in
either case, so it does not enter the comparison.

    python benchmarks/pic_sampling.py [--filters 160] [--blocks 4] [--grid 16] [--batch 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from chromaproxy.pixelcnn.mixture import LogisticMixture
from chromaproxy.pixelcnn.network import ConditionalPixelCNN
from chromaproxy.pixelcnn.sampling import draw_noise, sample_cached, sample_naive


def timed(sampler, *args) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = sampler(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=160)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--cond", type=int, default=256, help="channels of g(L)'s map")
    parser.add_argument("--grid", type=int, default=16, help="chroma grid side (16 for 32 px images)")
    parser.add_argument("--batch", type=int, default=8, help="images drawn at once (K samples of one photo)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = ConditionalPixelCNN(LogisticMixture(2, 10, 256, extra=1), args.filters, args.blocks, args.cond).eval()
    cond = torch.randn(args.batch, args.cond, args.grid, args.grid)
    extra = torch.rand(args.batch, 1, args.grid, args.grid) * 2 - 1
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.filters} filters x {args.blocks} blocks, {args.grid}x{args.grid} grid, batch {args.batch}")
    ratios = []
    for repeat in range(args.repeats):
        noise = draw_noise(args.batch, net, args.grid, args.grid, torch.Generator().manual_seed(repeat), "cpu")
        naive_s, naive = timed(sample_naive, net, cond, extra, noise)
        cached_s, cached = timed(sample_cached, net, cond, extra, noise)
        ratios.append(naive_s / cached_s)
        print(f"repeat {repeat}: naive {naive_s:.2f} s, cached {cached_s:.2f} s, ratio {ratios[-1]:.1f}x, "
              f"identical {torch.equal(naive, cached)} (pixels that differ: {(naive != cached).any(1).float().mean():.4f})")
    print(f"median ratio naive / cached: {statistics.median(ratios):.1f}x")


if __name__ == "__main__":
    main()
