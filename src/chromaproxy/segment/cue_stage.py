"""SEC's first stage: localisation cues for every training image, computed ONCE per run and kept in it.

``run/sec/cue_network.safetensors`` (the trained GAP classifier) and ``run/sec/cues.safetensors`` (each
image's cue class map at the photo's size, 255 = no cue) are written atomically, and their headers say
which images, labels and settings they belong to. A resumed run, or a rerun of the stage, finds them and
reuses them; a cue network saved before an interruption is reused too, so the stage restarts from the
last finished step. ``sec.cues=RUN`` reads another run's cues (the ablations share one cue stage); cues
made for other images or settings are never reused.

Cues: the CAMs of the image's present classes, upsampled to the photo, above ``sec.fg_fraction`` of
their maximum (foreground) and the ``sec.bg_fraction`` least salient pixels (background), as
``segment.sec.localisation_cues``; a pixel that two classes' maps mark goes to the class whose map is
relatively stronger there. With ``sec.micro`` (a micro-annotation's ``micro.json``), the CAMs first go
through ``chromaproxy.segment.micro.suppress_distractors(cams, features, labels, micro)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console

from chromaproxy.checkpoint import load_checkpoint, read_meta, save_checkpoint
from chromaproxy.data.augment import to_float
from chromaproxy.errors import UserError
from chromaproxy.segment.cue_network import NETWORK_FILE, CueNetwork, save_cue_network, train_cue_network
from chromaproxy.segment.masks import IGNORE
from chromaproxy.segment.micro import suppress_distractors
from chromaproxy.segment.micro_file import read_micro
from chromaproxy.segment.sec import localisation_cues

CUE_DIR = "sec"
CUES_FILE = "cues.safetensors"
BATCH = 64  # photos per pass of the cue network when computing the cues


def identity(cfg: Any, photos: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """What cues belong to: the images' pixels and labels, the cue network's model and the cue settings."""
    digest = hashlib.sha256(photos.contiguous().numpy().tobytes())
    digest.update(labels.to(torch.uint8).contiguous().numpy().tobytes())
    sec, model = cfg.sec, cfg.model
    return {"images": len(photos), "side": photos.shape[-1], "fingerprint": digest.hexdigest()[:16],
            "model": [model.name, model.width, model.blocks, model.input, sec.tap], "seed": cfg.seed,
            "cue_epochs": sec.cue_epochs, "cue_lr": sec.cue_lr, "fg_fraction": sec.fg_fraction,
            "bg_fraction": sec.bg_fraction, "micro": str(Path(sec.micro).resolve()) if sec.micro else None}


def cue_maps(cfg: Any, photos: torch.Tensor, labels: torch.Tensor, classes: list[str], run: Path | None,
             device: torch.device, progress: bool = True) -> torch.Tensor:
    """(N, S, S) uint8 cue class maps of ``photos`` (N, 3, S, S) uint8 with image labels (N, K) bool:
    from the run (or ``sec.cues``) when saved for these images and settings, else computed and saved."""
    wanted, console = identity(cfg, photos, labels), Console(stderr=True, quiet=not progress)
    for folder in [run, Path(cfg.sec.cues) if cfg.sec.cues else None]:
        saved = _saved(folder / CUE_DIR / CUES_FILE, wanted) if folder is not None else None
        if saved is not None:
            console.print(f"cue stage: reusing the cues saved in {folder / CUE_DIR / CUES_FILE}", soft_wrap=True)
            if run is not None and folder != run:
                _save(run, saved, labels, wanted)
                _copy_network(folder, run)
            return saved
    if cfg.sec.cues:
        raise UserError(f"sec.cues={cfg.sec.cues} holds no cues for these images and settings "
                        f"({CUE_DIR}/{CUES_FILE} of a SEC run with the same data, model, seed and sec.cue_* keys)")
    network = _cue_network(cfg, photos, labels, classes, run, device, progress, wanted)
    maps = compute_cue_maps(network, photos, labels, cfg.sec, device, progress)
    if run is not None:
        _save(run, maps, labels, wanted)
    return maps


def _saved(path: Path, wanted: dict[str, Any]) -> torch.Tensor | None:
    if not path.is_file() or read_meta(path) != wanted:
        return None
    return load_checkpoint(path)["cues"]


def _save(run: Path, maps: torch.Tensor, labels: torch.Tensor, wanted: dict[str, Any]) -> None:
    (run / CUE_DIR).mkdir(parents=True, exist_ok=True)
    save_checkpoint(run / CUE_DIR / CUES_FILE, {"cues": maps, "labels": labels.to(torch.uint8)}, wanted)


def _copy_network(source: Path, run: Path) -> None:
    """The cue network beside the cues it made, so ``sec.init=cues`` and ``load_cue_network`` find it in the run."""
    path = source / CUE_DIR / NETWORK_FILE
    if path.is_file():
        save_checkpoint(run / CUE_DIR / NETWORK_FILE, load_checkpoint(path), read_meta(path))


def _cue_network(cfg: Any, photos: torch.Tensor, labels: torch.Tensor, classes: list[str], run: Path | None,
                 device: torch.device, progress: bool, wanted: dict[str, Any]) -> CueNetwork:
    """The run's saved cue network when it was trained for these images, else a newly trained one (saved)."""
    torch.manual_seed(cfg.seed)
    network = CueNetwork(cfg, len(classes))
    path = run / CUE_DIR / NETWORK_FILE if run is not None else None
    meta = read_meta(path) if path is not None and path.is_file() else {}
    if {key: meta.get(key) for key in wanted} == wanted:
        network.load_state_dict(load_checkpoint(path))
        return network.to(device)
    history = train_cue_network(network, photos, labels, cfg.sec, device, cfg.seed, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_cue_network(network, path, {**wanted, "classes": classes, "side": photos.shape[-1], "loss": history})
    return network


@torch.no_grad()
def compute_cue_maps(network: CueNetwork, photos: torch.Tensor, labels: torch.Tensor, options: Any,
                     device: torch.device, progress: bool = False) -> torch.Tensor:
    """(N, S, S) uint8 cue class maps, ``BATCH`` photos at a time."""
    network.to(device).eval()
    micro = read_micro(Path(options.micro)) if options.micro else None
    maps = []
    for start in range(0, len(photos), BATCH):
        rgb = to_float(photos[start : start + BATCH].to(device))
        present = labels[start : start + BATCH].to(device)
        cams, features = network(rgb)  # (B, K, h, w), (B, C, h, w)
        if micro is not None:
            cams = suppress_distractors(cams, features, present, micro)
        cams = F.interpolate(cams, size=photos.shape[-2:], mode="bilinear", align_corners=False)  # (B, K, S, S)
        maps.append(cue_class_map(cams, present, options.fg_fraction, options.bg_fraction).cpu())
    return torch.cat(maps)


def cue_class_map(cams: torch.Tensor, labels: torch.Tensor, fg_fraction: float, bg_fraction: float) -> torch.Tensor:
    """(B, H, W) uint8: each pixel's cue class, the relatively strongest where several classes mark it; 255 = none."""
    cues = localisation_cues(cams, labels, fg_fraction, bg_fraction)  # (B, K, H, W) bool
    relative = cams / cams.flatten(2).amax(-1).clamp(min=1e-12)[:, :, None, None]
    best = torch.where(cues, relative, torch.full_like(relative, -torch.inf)).argmax(1)  # (B, H, W)
    return torch.where(cues.any(1), best, torch.full_like(best, IGNORE)).to(torch.uint8)
