"""Sparse vs dense hypercolumn training (Larsson et al. 2016, Sec. 3.1): time and peak memory of one
colorization training step (forward + backward), the head read at 128 random points per image versus at
every pixel centre.

Model: NIN-4 at width 0.5 on L (1 channel), the hypercolumn over all 4 taps, head Linear(sum C, 1024) -
ReLU - Linear(1024, 313), soft cross-entropy against random soft targets (chromaproxy's own functions).
Each configuration runs in fresh subprocesses, interleaved, and the fastest step counts (a shared CPU only
ever adds time); its peak memory is ``ru_maxrss`` after the steps minus that
of a baseline subprocess which builds the same model, inputs and targets but runs no step. Numbers are CPU numbers
(threads as torch's default); the ratios dense / sparse are what carries over to other machines.

    python benchmarks/hypercolumn_sparse.py [--steps 3] [--repeats 2] [--batch 16] [--batch-128 4]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch
from torch import nn

from chromaproxy.models import build_backbone
from chromaproxy.models.hypercolumn import hypercolumns, pixel_centres, random_points
from chromaproxy.tasks.colorize_losses import soft_cross_entropy

POINTS = 128  # Larsson's ECCV code
BINS = 313  # Zhang's ab bins
HIDDEN = 1024


def build(size: int, batch: int, mode: str):
    """Backbone, head, L input (B, 1, S, S), points (B, P, 2) and soft targets (B, P, 313)."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    backbone = build_backbone("nin", in_channels=1, width=0.5, blocks=4)
    taps = [tap.name for tap in backbone.feature_info]
    channels = sum(tap.channels for tap in backbone.feature_info)
    head = nn.Sequential(nn.Linear(channels, HIDDEN), nn.ReLU(inplace=True), nn.Linear(HIDDEN, BINS))
    L = torch.randn(batch, 1, size, size, generator=generator)
    if mode == "dense":
        points = pixel_centres(size, size, L.device).expand(batch, -1, -1)  # (B, S*S, 2)
    else:
        points = random_points(batch, POINTS, generator, L.device)  # (B, 128, 2)
    soft = torch.randn(batch, points.shape[1], BINS, generator=generator).softmax(-1)  # (B, P, 313)
    return backbone.train(), head.train(), taps, L, points, soft


def step(backbone, head, taps, L, points, soft) -> None:
    backbone.zero_grad(set_to_none=True)
    head.zero_grad(set_to_none=True)
    features = backbone.forward_features(L, taps)
    loss = soft_cross_entropy(head(hypercolumns(features, points)), soft)  # head output (B, P, 313)
    loss.backward()


def worker(mode: str, size: int, batch: int, steps: int) -> dict:
    """Runs in its own process: best (minimum) seconds per step (after one warm-up step) and peak RSS in MiB."""
    parts = build(size, batch, mode.removeprefix("baseline-"))
    seconds = None
    if not mode.startswith("baseline"):
        step(*parts)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step(*parts)
            times.append(time.perf_counter() - start)
        seconds = min(times)  # best of N: other processes on a shared CPU only ever add time
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB → MiB
    return {"seconds": seconds, "peak_mib": peak}


def measure(mode: str, size: int, batch: int, steps: int) -> dict:
    command = [sys.executable, __file__, "--worker", mode, str(size), str(batch), str(steps)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def best_of(size: int, batch: int, steps: int, repeats: int) -> tuple[dict, dict]:
    """Sparse and dense each in ``repeats`` interleaved processes (sparse with 4x the steps: they are
    short); the fastest step and the largest peak of each mode."""
    runs = {"sparse": [], "dense": []}
    for _ in range(repeats):
        for mode in runs:
            runs[mode].append(measure(mode, size, batch, steps * (4 if mode == "sparse" else 1)))
    return tuple({"seconds": min(r["seconds"] for r in results), "peak_mib": max(r["peak_mib"] for r in results)}
                 for results in runs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after 1 warm-up)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved processes per configuration")
    parser.add_argument("--batch", type=int, default=16, help="images per step at 64x64")
    parser.add_argument("--batch-128", type=int, default=4, help="images per step at 128x128 (dense is heavy on a CPU)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, size, batch, steps = args.worker
        print(json.dumps(worker(mode, int(size), int(batch), int(steps))))
        return
    print(f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"NIN-4 width 0.5 on L, hypercolumn of 4 taps, head {HIDDEN}-{BINS}, fastest of {args.steps} (sparse: {4 * args.steps}) timed steps after 1 warm-up, in each of {args.repeats} interleaved processes\n")
    print("| input | batch | points/image sparse | points/image dense | sparse s/step (CPU, best) | dense s/step (CPU, best) "
          "| time dense/sparse | sparse peak MiB (CPU) | dense peak MiB (CPU) | memory dense/sparse |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, batch in ((64, args.batch), (128, args.batch_128)):
        sparse, dense = best_of(size, batch, args.steps, args.repeats)
        sparse_mib, dense_mib = (result["peak_mib"] - measure(f"baseline-{mode}", size, batch, 0)["peak_mib"]
                                 for result, mode in ((sparse, "sparse"), (dense, "dense")))
        print(f"| {size}x{size} | {batch} | {POINTS} | {size * size} | {sparse['seconds']:.3f} | {dense['seconds']:.3f} "
              f"| {dense['seconds'] / sparse['seconds']:.1f}x | {sparse_mib:.0f} | {dense_mib:.0f} "
              f"| {dense_mib / max(sparse_mib, 1):.1f}x |")
    print("\npeak MiB = ru_maxrss of the stepping process minus that of a process that only builds the same model, inputs and targets.")


if __name__ == "__main__":
    main()
