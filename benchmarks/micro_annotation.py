"""Micro-annotation's effect on localisation cues, measured without a person.

Trains the stand-in cue network (``chromaproxy.segment.camnet``: a small CAM network on image-level
labels) on a mask dataset's training photos into --out, clusters and marks the clusters with the scripted
annotator (``chromaproxy annotate --scripted``'s code), then reads the CAMs of the held-out test photos as
a segmentation (the labelled class with the highest CAM / max above 0.2, else background) before and after
suppress_distractors, and prints the mIoU of both. Training photos are used for clusters and marks only.

    OMP_NUM_THREADS=1 python benchmarks/micro_annotation.py --data pets3 --out runs/cam-pets3 --steps 600

The --out folder is then a run the annotation page opens: chromaproxy annotate runs/cam-pets3. An --out
that is a SEC run (configs/sec-pets3-quick.yaml) is measured with its own cue network instead.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from chromaproxy.data.sources import resolve_root
from chromaproxy.segment.annotate import Settings, open_cue_network, prepare, run_cues
from chromaproxy.segment.camnet import save_cam_network, train_cam_network
from chromaproxy.segment.masks import image_labels
from chromaproxy.segment.metrics import class_iou, mean_iou
from chromaproxy.segment.micro import FOREGROUND, distractor_share, suppress_distractors
from chromaproxy.segment.micro_file import write_micro
from chromaproxy.segment.micro_script import cue_confusion, scripted_marks
from chromaproxy.segment.sources import load_masks


def train(args, splits) -> float:
    """The stand-in network into args.out (skipped when it is there already, or when args.out is a SEC run
    with its own cue network); returns seconds spent."""
    if (args.out / "cue_network.safetensors").is_file() or (args.out / "sec" / "cue_network.safetensors").is_file():
        return 0.0
    start = time.time()
    labels = image_labels(splits.train.masks, len(splits.classes))
    network = train_cam_network(splits.train.images, labels, args.steps, width=args.width, seed=args.seed)
    save_cam_network(network, args.out, args.data, splits.classes)
    return time.time() - start


def measure(network, micro, split, classes) -> dict:
    cams, features, labels = run_cues(network, split, len(classes))
    before = cue_confusion(cams, labels, split.masks, len(classes), FOREGROUND)
    suppressed = suppress_distractors(cams, features, labels, micro)
    after = cue_confusion(suppressed, labels, split.masks, len(classes), FOREGROUND)
    per_class = {name: [round(float(b), 4), round(float(a), 4)] for name, b, a in zip(classes, class_iou(before), class_iou(after))}
    return {"miou_before": round(mean_iou(before), 4), "miou_after": round(mean_iou(after), 4),
            "fg_precision_before_after": [foreground_share(before, 0), foreground_share(after, 0)],
            "fg_recall_before_after": [foreground_share(before, 1), foreground_share(after, 1)],
            "iou_before_after": per_class}


def foreground_share(confusion: torch.Tensor, axis: int) -> float:
    """Pixels given their true foreground class, as a share of those predicted foreground (axis 0:
    precision of the cues) or of the true foreground pixels (axis 1: recall); rows = truth."""
    correct = confusion.diagonal()[1:].sum()
    return round(float(correct / confusion[1:, :].sum() if axis else correct / confusion[:, 1:].sum()), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="pets3", help="mask dataset: pets3, coco200, camvid, voc")
    parser.add_argument("--out", type=Path, required=True, help="run folder for the cue network and micro.json")
    parser.add_argument("--steps", type=int, default=600, help="training steps of 32 photos")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = load_masks(args.data, resolve_root(None))
    seconds = train(args, splits)
    network, _ = open_cue_network(args.out)
    start = time.time()
    micro = prepare(args.out, splits.train, splits.classes, network, Settings(data=args.data, seed=args.seed), recompute=True)
    overlaps = scripted_marks(micro, run_cues(network, splits.train, len(splits.classes)), splits.train.masks, FOREGROUND, args.overlap)
    write_micro(args.out / "micro.json", micro)
    result = {"data": args.data, "steps": args.steps, "train_seconds": round(seconds, 1),
              "annotate_seconds": round(time.time() - start, 1), "distractors": distractor_share(micro),
              "overlaps": {splits.classes[c]: shares for c, shares in overlaps.items()},
              "test": measure(network, micro, splits.test, splits.classes),
              "train": measure(network, micro, splits.train, splits.classes)}
    (args.out / "micro_benchmark.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
