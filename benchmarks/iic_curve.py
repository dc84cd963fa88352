"""IIC cluster accuracy against training time: the curve behind the quick preset's choice.

Trains ``chromaproxy cluster``'s task with the real ``Trainer`` (one process, the threads torch picks)
and, after every epoch, assigns all training images with the current network exactly as the ``cluster``
command does at the end (centre crop, lowest-loss sub-head) and scores both heads against the labels:
one-to-one (Hungarian) and many-to-one accuracy, NMI, the number of non-empty clusters. With
``train.ema=DECAY`` the Polyak average of the weights (what ``cluster`` then assigns with) is scored too,
under the key ``ema``. The time axis is training time only (the scoring passes are not counted). Writes one
JSON line per epoch and a table.

    CHROMAPROXY_DATA=/path/to/data python benchmarks/iic_curve.py [--preset configs/iic-cifar10-quick.yaml]
        [--minutes 15] [key=value ...] [--out benchmarks/iic_curve.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from chromaproxy.allocator import keep_freed_memory
from chromaproxy.config import load_config
from chromaproxy.engine.data import training_images
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.trainer import Trainer
from chromaproxy.eval.clustering import probabilities
from chromaproxy.eval.clustering import score as score_clusters
from chromaproxy.tasks.iic import HEADS

REPO = Path(__file__).resolve().parents[1]


def score(trainer: Trainer, images) -> dict:
    network = trainer.network
    was_training = network.training
    soft = probabilities(network, network.tasks["iic"], images, trainer.device)
    network.train(was_training)
    return {head: score_clusters(p.argmax(1), p.shape[1], images.labels) for head, p in soft.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=str(REPO / "configs/iic-cifar10-quick.yaml"))
    parser.add_argument("--minutes", type=float, default=15.0, help="stop after the epoch that passes this training time")
    parser.add_argument("--out", default=None, help="JSON lines, one per epoch (default: print only)")
    parser.add_argument("overrides", nargs="*", help="config key=value items")
    args = parser.parse_args()
    keep_freed_memory()  # as the chromaproxy command does
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.preset, [*args.overrides, f"out={tmp}/run", "eval.test_limit=1", "train.checkpoint_minutes=0"])
        trainer = Trainer(cfg, open_run_dir(cfg))
        images = training_images(cfg, progress=False)[2]
        rows, trained = [], 0.0
        original_end = trainer._end_epoch

        def end_epoch(epoch, window, log, progress):
            nonlocal trained
            trained += time.perf_counter() - started[0]
            original_end(epoch, window, log, progress)
            row = {"epoch": epoch + 1, "step": trainer.step, "train_minutes": trained / 60, **score(trainer, images)}
            if trainer.ema is not None:
                with trainer.ema.swapped_in(trainer.network):
                    row["ema"] = score(trainer, images)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if trained / 60 >= args.minutes:
                trainer.total_steps = trainer.step  # ends the loop after this epoch
            started[0] = time.perf_counter()

        trainer._end_epoch = end_epoch
        started = [time.perf_counter()]
        trainer.fit()
    print(f"\n{cfg.preset}: {' '.join(args.overrides)}  ({torch.get_num_threads()} threads)")
    print("| epoch | train min | " + " | ".join(f"{h} 1:1 | {h} m:1 | {h} used" for h in HEADS) + " |")
    for row in rows:
        for name, scores in (("", row), (" (ema)", row.get("ema"))):
            if scores is not None:
                cells = [f"{100 * scores[h]['hungarian']:.1f} | {100 * scores[h]['many_to_one']:.1f} | {scores[h]['used']}/{scores[h]['k']}" for h in HEADS]
                print(f"| {row['epoch']}{name} | {row['train_minutes']:.1f} | " + " | ".join(cells) + " |")
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
