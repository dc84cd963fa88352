"""Color-S4L's 7th self-supervised label: every training image as a colorization run recolors it.

The colorizer sees only the image's lightness and predicts ab; the recolorized image joins the ORIGINAL
L with the predicted ab (so it differs from the original in colour alone, up to the sRGB gamut and uint8
rounding). It is computed once per run, with batched inference, and cached in the run directory as
``recolorized.safetensors``. The cache's header names the colorizer (its path and a hash of its
checkpoint) and the images (count and pixel fingerprint); a cache made by another colorizer or for other
images is recomputed, never reused. A fitting cache of a sibling run is read instead of recomputing: the
seeds of ``seeds=[0,1,2]`` (``out/seed<k>``) share their training images, so the first seed's
recolorization serves them all.

The colorizer runs under the device's autocast (bf16 on CUDA and on CPUs with native bf16, see
``chromaproxy.device``): the hypercolumn head decodes all 1,024 pixels of every image, which took 28
minutes for 50,000 images in float32 on a 2-core CPU (benchmarks/RESULTS.md, "Recolorizing in bf16"). bf16
colours differ slightly from float32 ones, so the header records the precision too and a cache of the
other precision is recomputed.

The colorizer must be a colorization run trained on this run's image size: at another size its ab would
come from a network that never saw such images.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from rich.progress import track

from chromaproxy.checkpoint import load_checkpoint, read_meta, save_checkpoint
from chromaproxy.cluster.labels_file import fingerprint
from chromaproxy.color import join_lab, lab_to_rgb
from chromaproxy.data.augment import to_float
from chromaproxy.data.types import ImageSet
from chromaproxy.device import autocast, precision
from chromaproxy.errors import UserError
from chromaproxy.inference.colorize import colorization_task, lab_lightness, predict_small_ab
from chromaproxy.io import checkpoint_dir, read_run_config

CACHE_FILE = "recolorized.safetensors"
BATCH = 256  # images per colorizer pass


def colorizer_identity(colorizer: str | Path) -> dict[str, Any]:
    """The colorizer's resolved path, its checkpoint's hash and image size; a folder that is not a
    trained colorization run is a one-line error."""
    run = Path(colorizer)
    weights = checkpoint_dir(run) / "last.safetensors"
    if not (run / "config.yaml").is_file() or not weights.is_file():
        raise UserError(f"colorizer={colorizer} is not a trained run (no config.yaml and checkpoints/last.safetensors); "
                        "train one with: chromaproxy pretrain configs/colorization-cifar10-quick.yaml out=runs/color-quick")
    cfg = read_run_config(run)
    if "colorization" not in cfg.tasks:
        raise UserError(f"colorizer={colorizer} was trained with tasks {list(cfg.tasks)}, not colorization; "
                        "pass a run of configs/colorization-cifar10-quick.yaml")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    return {"colorizer": str(run.resolve()), "checkpoint": digest, "image_size": cfg.data.image_size}


def recolorized_for(cfg: Any, images: ImageSet, run: Path | None, device: torch.device, progress: bool = True) -> torch.Tensor:
    """(N, 3, H, W) uint8: ``images`` recolorized by ``cfg.colorizer``, from the run's cache when it fits."""
    identity = colorizer_identity(cfg.colorizer)
    if identity["image_size"] != cfg.data.image_size:
        raise UserError(
            f"colorizer={cfg.colorizer} was trained on {identity['image_size']} px images, this run uses "
            f"data.image_size={cfg.data.image_size}; train a colorizer at {cfg.data.image_size} px"
        )
    wanted = {**identity, "images": len(images), "fingerprint": fingerprint(images), "precision": precision(device)}
    cache = None if run is None else run / CACHE_FILE
    fitting = next((path for path in _caches(run) if read_meta(path) == wanted), None)
    if fitting is not None:
        return load_checkpoint(fitting)["recolorized"]
    recolorized = recolorize(Path(cfg.colorizer), images, device, progress)
    if cache is not None:
        save_checkpoint(cache, {"recolorized": recolorized}, wanted)
    return recolorized


def _caches(run: Path | None) -> list[Path]:
    """The run's own cache first, then its siblings' (the other seeds of a ``seeds=[...]`` run)."""
    if run is None:
        return []
    siblings = sorted(p for p in run.parent.glob(f"*/{CACHE_FILE}") if p.parent != run)
    return [path for path in [run / CACHE_FILE, *siblings] if path.is_file()]


@torch.no_grad()
def recolorize(colorizer: Path, images: ImageSet, device: torch.device, progress: bool = True) -> torch.Tensor:
    """Every image with its own L and the colorizer's ab (annealed-mean decoding), as uint8 RGB."""
    from chromaproxy.network import load_network

    _, network = load_network(colorizer)
    network.to(device)
    task = colorization_task(network, colorizer)
    out = torch.empty_like(images.images)
    chunks = torch.arange(len(images)).split(BATCH)
    for index in track(chunks, description="recolorizing", disable=not progress, transient=True):
        rgb = to_float(images.images[index].to(device))  # (B, 3, H, W)
        with autocast(device):
            ab = predict_small_ab(network, task, rgb, "annealed", None).float()  # (B, 2, H, W)
        joined = lab_to_rgb(join_lab(lab_lightness(rgb), ab)).clamp(0, 1)
        out[index] = joined.mul(255).round().to(torch.uint8).cpu()
    return out
