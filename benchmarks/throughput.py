"""Training throughput and memory, each speed as a ratio against a reference measured in the same run.

(a) Pipeline overhead: end-to-end training img/s of the real ``Trainer`` (what ``chromaproxy pretrain``
    runs; read from its own per-window img/s in metrics.jsonl, the first window dropped as warm-up)
    divided by the compute-only img/s of the same model, batch, optimizer and thread count: the same
    ``Network.forward`` + backward + step on pre-made float batches already on the device. The two
    alternate in rounds (AB BA AB); medians reported. Target >= 0.95.
(b) Data path alone (load + augment a batch, no model): the trainer's path (index gather from the uint8
    tensor + batched ``augment()``, one process) against a per-image PIL/numpy ``Dataset`` in a torch
    ``DataLoader`` with ``--workers`` processes; same augmentation (random crop after 4-px zero padding,
    horizontal flip, checked pixel-identical for equal draws), same number of images, both yielding
    float32 (B, 3, 32, 32) in [0, 1]. Targets >= 4x and >= 20,000 img/s (enough to feed a GPU).
(c) Peak memory (VmHWM of the process) of a full CIFAR-10 ``chromaproxy pretrain
    configs/supervised-cifar10-quick.yaml`` (all 50,000 training images loaded) for a bounded number of
    steps, at two step counts to show it does not grow with steps, plus a run without the test
    evaluation to show which phase sets the peak. Target <= 2 GB.

Every model runs the supervised task of configs/supervised-cifar10-quick.yaml (batch 128, SGD Nesterov);
``nin`` is NIN-4 at width 0.5, ``resnet18`` the CIFAR ResNet-18 at width 1. Models missing from
``chromaproxy.models.BACKBONES`` are reported and skipped. The defaults take about 7.5 minutes on 2 CPU
cores (``--parts``, ``--models`` and ``--steps`` for less).

    CHROMAPROXY_DATA=/path/to/data python benchmarks/throughput.py [--models nin,resnet18] [--steps N]
        [--rounds 3] [--threads T] [--workers 2] [--parts a,b,c] [--out benchmarks/throughput.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from rich.console import Console
from torch.utils.data import DataLoader, Dataset

from chromaproxy.config import load_config
from chromaproxy.data.augment import AugmentSpec, augment, crop_and_flip
from chromaproxy.data.sources import load_source
from chromaproxy.device import MEMORY_FORMAT, resolve_device
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.sampler import EpochSampler
from chromaproxy.engine.trainer import Trainer
from chromaproxy.models import BACKBONES
from chromaproxy.network import Network
from chromaproxy.optim import build_optimizer, lr_at, set_lr

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "supervised-cifar10-quick.yaml"
MODEL_OVERRIDES = {  # model name -> config overrides; any other BACKBONES entry runs at width 1
    "nin": ["model.name=nin", "model.width=0.5", "model.blocks=4"],
    "resnet18": ["model.name=resnet18", "model.width=1.0"],
}
MODEL_TITLES = {"nin": "NIN-4 width 0.5", "resnet18": "CIFAR ResNet-18"}
DEFAULT_STEPS = {"nin": 20}  # timed steps per round; slower models get DEFAULT_STEPS_OTHER
DEFAULT_STEPS_OTHER = 10
TARGET_RATIO, TARGET_SPEEDUP, TARGET_RATE, TARGET_PEAK_BYTES = 0.95, 4.0, 20_000, 2_000_000_000


# ------------------------------------------------------------------------------------------ shared
def model_overrides(model: str) -> list[str]:
    return MODEL_OVERRIDES.get(model, [f"model.name={model}", "model.width=1.0"])


def bench_config(model: str, root: str | None, device: str, extra: list[str] = ()) -> Any:
    """The supervised quick preset with the model's overrides: the one config both sides of (a) use."""
    overrides = model_overrides(model) + [f"device={device}", *extra]
    return load_config(PRESET, overrides + ([f"data.root={root}"] if root else []))


def augment_spec(cfg: Any) -> AugmentSpec:
    """The spec the trainer builds from ``cfg.augment`` (same fields, same order)."""
    a = cfg.augment
    return AugmentSpec(crop_padding=a.crop_padding, hflip=a.hflip, color_jitter=tuple(a.color_jitter),
                       color_jitter_p=a.color_jitter_p, grayscale_p=a.grayscale_p)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures work done and not work queued (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine_info(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": threads,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


# ------------------------------------------------------------------------- (a) pipeline overhead
def trainer_rate(cfg: Any, run: Path, console: Console) -> tuple[float, int]:
    """Steady-state img/s of ``Trainer.fit()``: every metrics.jsonl train window after the first.

    The trainer times each window of ``train.log_every`` steps itself (gather, augment, step, its metric
    sums, and the logging and progress-bar update of the previous window); the first window holds the
    one-off warm-up (first-call kernel setup) and is dropped. Read this way, construction, the end-of-run
    test evaluation and checkpoint writing (one-off costs, not per-step ones) are not counted.
    Returns (img/s, images counted)."""
    cfg.out = str(run)
    trainer = Trainer(cfg, open_run_dir(cfg), console)
    trainer.fit()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "img_per_s" in r and "split" not in r]
    seconds, images, previous = 0.0, 0, train[0]["step"]
    for record in train[1:]:
        count = (record["step"] - previous) * cfg.train.batch_size
        seconds, images, previous = seconds + count / record["img_per_s"], images + count, record["step"]
    return images / seconds, images


def premade_batches(cfg: Any, count: int, device: torch.device) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """``count`` real CIFAR-10 batches, augmented once, on the device in the trainer's memory format, and
    the number of classes.

    Several distinct real batches (not one, not noise) keep the numerics of the compute-only loop like
    training's, so neither side runs into e.g. denormals from over-fitting a single batch."""
    images = load_source(cfg.data.name, root=cfg.data.root, progress=False).train
    generator = torch.Generator().manual_seed(cfg.seed)
    batches = []
    for _ in range(count):
        index = torch.randint(0, len(images), (cfg.train.batch_size,), generator=generator)
        rgb = augment(images.images[index], augment_spec(cfg), generator)
        batches.append((rgb.to(device).contiguous(memory_format=MEMORY_FORMAT), images.labels[index].to(device)))
    return batches, len(images.classes)


def compute_rate(cfg: Any, batches: list, num_classes: int, warmup: int, steps: int) -> float:
    """img/s of everything ``Trainer._train_step`` does except the data gather and ``augment()``:
    ``set_lr`` → ``Network.forward`` (per task ``make_batch`` + input normalisation, backbone, head, loss
    and metrics, under the trainer's autocast) → ``zero_grad`` → backward → step → detached outputs.
    Not counted: the trainer's metric sums, logging and progress bar, which are pipeline overhead the
    ratio is meant to expose. A fresh, identically seeded network per call; ``warmup`` untimed steps
    first (the trainer's dropped first window)."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    network = Network.from_config(cfg, num_classes).to(device)
    optimizer = build_optimizer(cfg.train, network)
    generator = torch.Generator(device).manual_seed(cfg.seed)
    total = warmup + steps

    def step(i: int) -> dict[str, torch.Tensor]:
        network.train()
        rgb, labels = batches[i % len(batches)]
        set_lr(optimizer, lr_at(cfg.train, i, total))
        outputs = network(rgb, labels, generator)
        optimizer.zero_grad(set_to_none=True)
        outputs["loss"].backward()
        optimizer.step()
        return {k: v.detach() for k, v in outputs.items()}

    for i in range(warmup):
        step(i)
    synchronize(device)
    start = time.perf_counter()
    for i in range(warmup, total):
        step(i)
    synchronize(device)
    return steps * cfg.train.batch_size / (time.perf_counter() - start)


def bench_overhead(model: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Alternates end-to-end and compute-only ``--rounds`` times, in the order AB BA AB … (a busy or
    drifting machine slows both alike), and reports the medians."""
    steps = args.steps or DEFAULT_STEPS.get(model, DEFAULT_STEPS_OTHER)
    steps = -(-steps // args.window) * args.window  # whole log windows
    extra = [f"train.max_steps={args.window + steps}", f"train.log_every={args.window}", "data.val_size=0",
             "eval.test_limit=10"]
    cfg = bench_config(model, args.root, args.device, extra)
    batches, num_classes = premade_batches(cfg, args.premade, resolve_device(cfg.device))
    console = Console(file=io.StringIO(), force_terminal=args.console == "terminal", width=120)
    e2e, compute = [], []
    for r in range(args.rounds):
        measure = [lambda: e2e.append(trainer_rate(bench_config(model, args.root, args.device, extra), scratch / f"{model}-{r}", console)[0]),
                   lambda: compute.append(compute_rate(cfg, batches, num_classes, args.window, steps))]
        for run in measure[::-1] if r % 2 else measure:
            run()
        print(f"  [{model} round {r + 1}/{args.rounds}] end-to-end {e2e[-1]:.1f} img/s, compute-only {compute[-1]:.1f} img/s",
              file=sys.stderr, flush=True)
    ratios = [a / b for a, b in zip(e2e, compute)]
    return {"model": model, "batch": cfg.train.batch_size, "steps": steps, "warmup_steps": args.window,
            "end_to_end": e2e, "compute_only": compute, "round_ratios": ratios,
            "end_to_end_median": median(e2e), "compute_only_median": median(compute),
            "ratio": median(e2e) / median(compute)}


# ------------------------------------------------------------------------------ (b) data path
def pil_crop_flip(image: np.ndarray, dy: int, dx: int, flip: bool, padding: int) -> np.ndarray:
    """One (H, W, 3) uint8 image: zero-pad by ``padding``, crop back to H x W at (dy, dx), mirror if ``flip``
    — torchvision's RandomCrop(padding) + RandomHorizontalFlip, written with PIL."""
    height, width = image.shape[:2]
    picture = ImageOps.expand(Image.fromarray(image), border=padding, fill=0) if padding else Image.fromarray(image)
    picture = picture.crop((dx, dy, dx + width, dy + height))
    if flip:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.array(picture)  # a writable copy, as torchvision's ToTensor takes


class PilAugmentedImages(Dataset):
    """The per-image reference: CIFAR-10 held as a numpy (N, 32, 32, 3) uint8 array (torchvision's
    layout); each item is one PIL-augmented image as a float (3, H, W) tensor in [0, 1] (ToTensor).
    Randomness from torch's RNG, which the DataLoader seeds differently in every worker."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, padding: int, hflip: bool) -> None:
        self.images, self.labels, self.padding, self.hflip = images_hwc, labels, padding, hflip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        dy, dx = torch.randint(0, 2 * self.padding + 1, (2,)).tolist()
        flip = self.hflip and torch.rand(()).item() < 0.5
        array = pil_crop_flip(self.images[i], dy, dx, flip, self.padding)
        return torch.from_numpy(array).permute(2, 0, 1).contiguous().float().div_(255.0), int(self.labels[i])


def check_batch(rgb: torch.Tensor, labels: torch.Tensor, batch: int) -> None:
    """What both pipelines must deliver: float32 (B, 3, 32, 32) in [0, 1] with (B,) int64 labels."""
    assert rgb.dtype == torch.float32 and tuple(rgb.shape) == (batch, 3, 32, 32), (rgb.dtype, rgb.shape)
    assert 0.0 <= float(rgb.min()) and float(rgb.max()) <= 1.0 and labels.shape == (batch,) and labels.dtype == torch.int64


def check_same_augmentation(images: torch.Tensor, padding: int, seed: int = 0) -> None:
    """The PIL reference and chromaproxy's ``crop_and_flip`` give identical pixels for the same crop
    offsets and flips (so (b) compares two implementations of one augmentation)."""
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.randint(0, 2 * padding + 1, (len(images), 2), generator=generator)
    flips = torch.rand(len(images), generator=generator) < 0.5
    ours = crop_and_flip(images, padding, offsets, flips)
    for i in range(len(images)):
        reference = pil_crop_flip(images[i].permute(1, 2, 0).numpy(), *offsets[i].tolist(), bool(flips[i]), padding)
        assert torch.equal(ours[i], torch.from_numpy(reference).permute(2, 0, 1)), f"image {i} differs"


def timed_batches(batches, batch: int, device: torch.device) -> float:
    """img/s over an iterator of (rgb, labels), not counting the first batch (DataLoader worker start-up,
    first-call setup). The first and last batches are checked (outside the timed span), so both
    pipelines are known to deliver the same kind of batch."""
    iterator = iter(batches)
    first = next(iterator)
    check_batch(first[0].cpu(), first[1].cpu(), batch)
    synchronize(device)
    start, images, last = time.perf_counter(), 0, first
    for last in iterator:
        images += len(last[0])
    synchronize(device)
    seconds = time.perf_counter() - start
    check_batch(last[0].cpu(), last[1].cpu(), batch)
    return images / seconds


def ours_batches(images, spec: AugmentSpec, batch: int, device: torch.device, seed: int):
    """The trainer's data path for one epoch: sampler order → index gather → to device → augment()."""
    sampler = EpochSampler(torch.arange(len(images)), batch, seed)
    generator = torch.Generator(device).manual_seed(seed)
    for index in sampler.batches(0):
        uint8 = images.images[index].to(device, non_blocking=True)
        labels = images.labels[index].to(device, non_blocking=True)
        yield augment(uint8, spec, generator), labels


def reference_loader(images_hwc: np.ndarray, labels: np.ndarray, spec: AugmentSpec, batch: int, workers: int) -> DataLoader:
    dataset = PilAugmentedImages(images_hwc, labels, spec.crop_padding, spec.hflip)
    return DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


def bench_data_path(args: argparse.Namespace) -> dict[str, Any]:
    """One epoch of CIFAR-10 (``--data-images``) through each pipeline, alternated AB BA … ``--rounds`` times."""
    cfg = bench_config("nin", args.root, args.device)
    spec, batch, device = augment_spec(cfg), cfg.train.batch_size, resolve_device(cfg.device)
    assert not any(spec.color_jitter) and spec.grayscale_p == 0, "the PIL reference implements crop + flip only"
    images = load_source(cfg.data.name, root=cfg.data.root, progress=False).train
    images = images.subset(torch.arange(min(args.data_images, len(images))))
    check_same_augmentation(images.images[:64], spec.crop_padding)
    images_hwc = np.ascontiguousarray(images.images.permute(0, 2, 3, 1).numpy())
    labels = images.labels.numpy()
    ours, reference = [], []
    for r in range(args.rounds):
        measure = [lambda: ours.append(timed_batches(ours_batches(images, spec, batch, device, cfg.seed + r), batch, device)),
                   lambda: reference.append(timed_batches(reference_loader(images_hwc, labels, spec, batch, args.workers), batch, device))]
        for run in measure[::-1] if r % 2 else measure:
            run()
        print(f"  [data path round {r + 1}/{args.rounds}] ours {ours[-1]:.0f} img/s, PIL DataLoader {reference[-1]:.0f} img/s",
              file=sys.stderr, flush=True)
    return {"images": len(images), "batch": batch, "workers": args.workers, "device": str(device),
            "ours": ours, "reference": reference, "ours_median": median(ours),
            "reference_median": median(reference), "speedup": median(ours) / median(reference)}


# ------------------------------------------------------------------------------ (c) peak memory
# Runs a module (``python -m`` style) and, at exit, writes the process's VmHWM (KiB) to argv[1]. VmHWM is
# the high-water mark of the memory map the exec'd program built; ``ru_maxrss`` is not usable here, as
# Linux carries the parent's RSS at fork time into the child's ru_maxrss (this process holds CIFAR-10
# copies by then and would set the "peak" itself).
PEAK_WRAPPER = """
import atexit, runpy, sys
def report(path=sys.argv[1]):
    with open('/proc/self/status') as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))
    with open(path, 'w') as out:
        out.write(str(kib))
atexit.register(report)
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
"""


def peak_rss(module_args: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[int, float]:
    """Peak resident set size (bytes) and wall seconds of ``python -m <module_args>`` in a child process,
    as the child's own VmHWM at exit."""
    report = log.with_suffix(".peak")
    command = [sys.executable, "-c", PEAK_WRAPPER, str(report), *module_args]
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env).returncode
    seconds = time.perf_counter() - start
    if code != 0 or not report.is_file():
        raise RuntimeError(f"python -m {' '.join(module_args)} failed ({code}):\n{log.read_text()[-2000:]}")
    return int(report.read_text()) * 1024, seconds


def bench_memory(model: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """A real ``chromaproxy pretrain`` of the quick preset on all of CIFAR-10, once per ``--mem-steps``.

    Nothing in a run grows with steps (the data is loaded once, metric sums are scalars, each step frees
    its activations), so a bounded run reaches the peak of a full one; two step counts show it. The
    end-of-run test evaluation runs on 500 images in batches of the training batch (128), so it peaks as
    high as the full 10,000 would. One more run with a 1-image test evaluation gives the peak of
    loading + training alone, to show which phase sets the peak."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)} if args.threads else None
    runs = [(steps, 500) for steps in args.mem_steps] + [(args.mem_steps[0], 1)]
    rows = []
    for i, (steps, test) in enumerate(runs):
        name = f"mem-{model}-{i}-{steps}-test{test}"
        command = ["chromaproxy", "pretrain", str(PRESET), *model_overrides(model),
                   f"train.max_steps={steps}", f"eval.test_limit={test}", f"out={scratch / name}"]
        command += [f"data.root={args.root}"] if args.root else []
        peak, seconds = peak_rss(command, scratch / f"{name}.log", env)
        rows.append({"steps": steps, "test_images": test, "peak_bytes": peak, "seconds": seconds})
        print(f"  [memory {model}, {steps} steps, test on {test}] peak RSS {peak / 1e9:.2f} GB in {seconds:.0f} s",
              file=sys.stderr, flush=True)
    return {"model": model, "runs": rows, "peak_bytes": max(r["peak_bytes"] for r in rows)}


# ------------------------------------------------------------------------------------ reporting
def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def rounds_text(values: list[float], digits: int = 0) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in values)


def print_overhead(rows: list[dict], rounds: int, threads: int) -> None:
    print(f"\n### (a) End-to-end `pretrain` vs compute-only (supervised, batch 128, {threads} threads, "
          f"median of {rounds} alternated rounds)\n")
    print("| model | timed steps per round | end-to-end img/s | compute-only img/s | ratio | target ≥ 0.95 "
          "| per round: end-to-end / compute-only (ratio) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        per_round = "; ".join(f"{a:.1f} / {b:.1f} ({a / b:.2f})" for a, b in zip(r["end_to_end"], r["compute_only"]))
        print(f"| {MODEL_TITLES.get(r['model'], r['model'])} | {r['steps']} (+{r['warmup_steps']} warm-up) "
              f"| {r['end_to_end_median']:.1f} | {r['compute_only_median']:.1f} | {r['ratio']:.3f} "
              f"| {yes(r['ratio'] >= TARGET_RATIO)} | {per_round} |")


def print_data_path(d: dict) -> None:
    print(f"\n### (b) Data path alone: {d['images']:,} CIFAR-10 images, batch {d['batch']}, crop (pad 4) + flip, "
          f"median of {len(d['ours'])} rounds\n")
    print("| pipeline | img/s | per round |")
    print("|---|---|---|")
    print(f"| chromaproxy: index gather from the uint8 tensor + batched `augment()`, 1 process, {d['device']} "
          f"| {d['ours_median']:,.0f} | {rounds_text(d['ours'])} |")
    print(f"| reference: per-image PIL `Dataset` in a `DataLoader`, {d['workers']} workers "
          f"| {d['reference_median']:,.0f} | {rounds_text(d['reference'])} |")
    print(f"\nspeed-up {d['speedup']:.1f}x (target ≥ {TARGET_SPEEDUP:.0f}x: {yes(d['speedup'] >= TARGET_SPEEDUP)}); "
          f"absolute {d['ours_median']:,.0f} img/s (target ≥ {TARGET_RATE:,}: {yes(d['ours_median'] >= TARGET_RATE)})")


def print_memory(rows: list[dict]) -> None:
    print("\n### (c) Peak RSS of `chromaproxy pretrain configs/supervised-cifar10-quick.yaml` "
          "(all 50,000 training images loaded; the test evaluation in batches of 128)\n")
    print("| model | steps | test images | peak RSS | wall time | target ≤ 2 GB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        for run in r["runs"]:
            print(f"| {MODEL_TITLES.get(r['model'], r['model'])} | {run['steps']} | {run['test_images']} "
                  f"| {run['peak_bytes'] / 1e9:.2f} GB "
                  f"({run['peak_bytes'] / 2**20:.0f} MiB) | {run['seconds']:.0f} s | {yes(run['peak_bytes'] <= TARGET_PEAK_BYTES)} |")


# ------------------------------------------------------------------------------------------ main
def available_models(names: list[str]) -> list[str]:
    missing = [m for m in names if m not in BACKBONES]
    for m in missing:
        print(f"model {m!r} is not in chromaproxy.models.BACKBONES ({', '.join(BACKBONES)}): skipped", flush=True)
    return [m for m in names if m in BACKBONES]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="nin,resnet18", help="backbones for (a) and (c), comma-separated")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"(a) timed steps per round and side (default: nin {DEFAULT_STEPS['nin']}, others {DEFAULT_STEPS_OTHER})")
    parser.add_argument("--window", type=int, default=5, help="(a) train.log_every; the first window is warm-up")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per measurement (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--workers", type=int, default=2, help="(b) DataLoader workers of the reference")
    parser.add_argument("--data-images", type=int, default=50000, help="(b) images per round (default: one epoch)")
    parser.add_argument("--mem-steps", default="10,40", help="(c) step counts of the bounded runs")
    parser.add_argument("--premade", type=int, default=4, help="(a) distinct pre-made batches the compute-only loop cycles")
    parser.add_argument("--console", choices=["terminal", "pipe"], default="terminal",
                        help="(a) the trainer's progress bar renders as on a terminal (default) or as when piped")
    parser.add_argument("--device", default="auto", help="device= of the runs (auto: cuda when present)")
    parser.add_argument("--root", default=None, help="data.root (default: $CHROMAPROXY_DATA)")
    parser.add_argument("--parts", default="a,b,c", help="which parts to run, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.parts = set(args.parts.split(","))
    args.mem_steps = [int(s) for s in args.mem_steps.split(",")]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info(torch.get_num_threads())
    started = time.perf_counter()
    print(f"{info['date']}: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['threads']} threads, "
          f"GPU {info['gpu'] or 'none'}, load average {info['load_average_start']}", flush=True)
    models = available_models(args.models)
    results: dict[str, Any] = {"machine": info, "args": {k: sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v
                                                         for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="throughput-") as scratch:
        if "a" in args.parts:
            results["overhead"] = [bench_overhead(m, args, Path(scratch)) for m in models]
        if "b" in args.parts:
            results["data_path"] = bench_data_path(args)
        if "c" in args.parts:
            results["memory"] = [bench_memory(m, args, Path(scratch)) for m in models]
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = time.perf_counter() - started
    if "overhead" in results:
        print_overhead(results["overhead"], args.rounds, info["threads"])
    if "data_path" in results:
        print_data_path(results["data_path"])
    if "memory" in results:
        print_memory(results["memory"])
    print(f"\ntotal {results['seconds'] / 60:.1f} min; load average at start {info['load_average_start']}, "
          f"at end {results['machine']['load_average_end']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
