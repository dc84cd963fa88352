"""What holds the quick colorization preset back: one pretraining + kNN evaluation per variant.

Each variant is the quick preset plus ``key=value`` overrides; the run is pretrained with
``chromaproxy pretrain`` and every tap is probed with cosine kNN (k = 10) on the first 10,000 training and
2,000 test images, the README's protocol, with global average pooling (SSL++) and a 2x2 grid beside it.
Prints one markdown row per variant: pretraining wall time, steps, and kNN top-1 per tap.

    CHROMAPROXY_DATA=../shared/data python benchmarks/colorization_ablation.py --out runs/ablation \\
        --variant "sgd=train.optimizer=sgd train.lr=0.1" --variant "baseline="
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

PRESET = "configs/colorization-cifar10-quick.yaml"
EVAL = ["--protocol", "knn", "eval.train_limit=10000", "eval.test_limit=2000", "knn.ks=[10]"]


def chromaproxy(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "chromaproxy", *args], check=True)


def knn_by_tap(run: Path, pooling: str) -> dict[str, float]:
    kept = run / f"knn-{pooling}.json"
    if not kept.is_file():
        chromaproxy("evaluate", str(run), *EVAL, f"knn.pooling={pooling}")
        (run / "eval" / "knn.json").rename(kept)
    records = json.loads(kept.read_text())["results"]
    return {r["tap"]: r["value"] for r in records if r["k"] == 10 and r.get("vote", "weighted") == "weighted"}


def run_variant(name: str, overrides: list[str], out: Path, preset: str, with_grid: bool) -> str:
    run = out / name
    if not (run / "checkpoints" / "last.safetensors").is_file():
        start = time.perf_counter()
        chromaproxy("pretrain", preset, f"out={run}", *overrides)
        (run / "wall_s.txt").write_text(f"{time.perf_counter() - start:.0f}")
    steps = json.loads((run / "checkpoints" / "last.json").read_text())["step"]
    avg = knn_by_tap(run, "avg")
    grid = knn_by_tap(run, "grid2") if with_grid else {}
    cells = " | ".join(f"{100 * avg[t]:.1f}" + (f" ({100 * grid[t]:.1f})" if grid else "") for t in avg)
    best = max(avg.values())
    return f"| {name} | `{' '.join(overrides)}` | {(run / 'wall_s.txt').read_text()} s | {steps} | {cells} | **{100 * best:.1f}** |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--preset", default=PRESET)
    parser.add_argument("--variant", action="append", required=True, help="NAME=key=value key=value ...")
    parser.add_argument("--avg-only", action="store_true", help="skip the 2x2-grid kNN (a quicker screening)")
    args = parser.parse_args()
    print("| variant | overrides | pretraining | steps | kNN top-1 per tap, avg (grid2) | best avg |")
    print("|---|---|---|---|---|---|")
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        print(run_variant(name, shlex.split(overrides), args.out, args.preset, not args.avg_only), flush=True)


if __name__ == "__main__":
    main()
