"""glibc's default malloc against the settings ``chromaproxy`` applies (``chromaproxy.allocator``), per preset.

For each quick preset it runs the real command, ``chromaproxy pretrain PRESET train.max_steps=N``, once with
``CHROMAPROXY_MALLOC=system`` and once with ``keep``, alternated AB BA AB, and reports the median of each
run's training img/s (its metrics.jsonl windows, the first dropped as warm-up), the minor page faults, the
CPU time spent in the kernel and the peak resident memory of the process (``os.wait4``'s rusage), and the
speed ratio keep / system.

    CHROMAPROXY_DATA=/path/to/data python benchmarks/allocator.py [--presets iic,rotation] [--steps 80]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CHOICES = ("system", "keep")


def run_once(preset: str, choice: str, steps: int, extra: tuple[str, ...] = ()) -> dict[str, float]:
    """One bounded pretraining under ``CHROMAPROXY_MALLOC=choice`` (``extra`` config overrides): its img/s and
    its process's rusage."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "chromaproxy", "pretrain", str(CONFIGS / f"{preset}-cifar10-quick.yaml"),
                   f"out={tmp}/run", f"train.max_steps={steps}", "train.log_every=10", "eval.test_limit=64",
                   "train.checkpoint_minutes=0", *extra]
        with open(Path(tmp, "stderr.txt"), "w+") as stderr:  # a file, not a pipe: nothing waits on it being read
            child = subprocess.Popen(command, env={**os.environ, "CHROMAPROXY_MALLOC": choice},
                                     stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(child.pid, 0)
            if status != 0:
                stderr.seek(0)
                raise SystemExit(f"{preset} ({choice}) failed: {stderr.read()[-2000:]}")
        rates = [row["img_per_s"] for row in map(json.loads, Path(tmp, "run", "metrics.jsonl").read_text().splitlines())
                 if "img_per_s" in row]
    return {"img_per_s": statistics.median(rates[1:]), "minflt": usage.ru_minflt, "sys_s": usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="iic,rotation,colorization", help="quick preset names")
    parser.add_argument("--steps", type=int, default=80, help="training steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| preset | malloc | img/s | minor faults | kernel CPU s | peak MB |")
    print("|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        runs: dict[str, list[dict[str, float]]] = {choice: [] for choice in CHOICES}
        for r in range(args.rounds):
            for choice in CHOICES[::-1] if r % 2 else CHOICES:
                runs[choice].append(run_once(preset, choice, args.steps))
        medians = {choice: {key: statistics.median(run[key] for run in runs[choice]) for key in runs[choice][0]}
                   for choice in CHOICES}
        for choice, m in medians.items():
            print(f"| {preset} | {choice} | {m['img_per_s']:.1f} | {m['minflt']:,.0f} | {m['sys_s']:.1f} | {m['peak_mb']:.0f} |")
        print(f"| {preset} | keep / system | {medians['keep']['img_per_s'] / medians['system']['img_per_s']:.2f} | | | |",
              flush=True)


if __name__ == "__main__":
    main()
