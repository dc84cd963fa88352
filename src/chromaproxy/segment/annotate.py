"""The annotation stage behind ``chromaproxy annotate RUN``: the run's cue network on the training photos,
patterns per class, spectral clusters, heatmap strips for the page, and RUN/micro.json; cached in
RUN/micro/ so opening the page again costs nothing.

The cue network enters through ``open_cue_network`` alone: anything that maps (uint8 images (B, 3, S, S),
image-level labels (B, K)) to the (cams, features, labels) triple will do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from chromaproxy.errors import UserError
from chromaproxy.io import atomic_write_text, read_run_config
from chromaproxy.segment.masks import MaskSet, image_labels
from chromaproxy.segment.micro import FOREGROUND, class_patterns
from chromaproxy.segment.micro_file import CACHE, INDEX, MICRO, new_micro, read_micro, write_micro
from chromaproxy.segment.micro_render import write_strips
from chromaproxy.segment.spectral import MAX_CLUSTERS, RHO, spectral_clusters

CueNetwork = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass
class Settings:
    """What the cached clusters depend on; a different value recomputes them."""

    data: str
    fraction: float = FOREGROUND
    rho: float = RHO
    samples: int = 12  # photos per class on the page (the thesis shows about 12)
    max_patterns: int = 20000  # per class, drawn at random: Lanczos is linear in N, k-means is not free
    seed: int = 0


def open_cue_network(run: Path) -> tuple[CueNetwork, str]:
    """The run's cue network and the mask dataset it was trained on: a SEC run's (``sec/cue_network``,
    fed the 8-bit canvases resized to the side it was trained at), else the stand-in ``camnet``'s."""
    from chromaproxy.segment.cue_network import NETWORK_FILE, load_cue_network

    if not (run / "sec" / NETWORK_FILE).is_file():
        from chromaproxy.segment.camnet import load_cam_network

        network, settings = load_cam_network(run)
        return network, settings["data"]
    model = load_cue_network(run)

    def sec_cues(images: torch.Tensor, labels: torch.Tensor):
        rgb = F.interpolate(images.float() / 255, size=(model.side, model.side), mode="bilinear", antialias=True,
                            align_corners=False)  # (B, 3, S, S): the canvas as the SEC run saw it
        return model(rgb, labels)

    return sec_cues, read_run_config(run).data.name


@torch.no_grad()
def run_cues(network: CueNetwork, images: MaskSet, num_classes: int, batch_size: int = 50):
    """The (cams, features, labels) triple for every photo of a split, with its true image-level labels."""
    labels = image_labels(images.masks, num_classes)
    parts = [network(images.images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return tuple(torch.cat([part[j] for part in parts]) for j in range(3))


def cluster_classes(triple, classes: list[str], settings: Settings) -> dict[int, dict]:
    """Per foreground class with enough patterns: its name, eigenvalues, cluster means (M, C) and sizes."""
    generator = torch.Generator().manual_seed(settings.seed)
    found = {}
    for c, patterns in class_patterns([triple], settings.fraction).items():
        if len(patterns) > settings.max_patterns:
            patterns = patterns[torch.randperm(len(patterns), generator=generator)[: settings.max_patterns]]
        if len(patterns) <= 2 * MAX_CLUSTERS:
            continue  # too few foreground positions to cluster: nothing of this class can be suppressed
        result = spectral_clusters(patterns.double().numpy(), rho=settings.rho, seed=settings.seed)
        assign = torch.from_numpy(result.assign)
        means = torch.stack([patterns[assign == j].mean(0) for j in range(result.k)])  # (k, C)
        sizes = torch.bincount(assign, minlength=result.k).tolist()
        found[c] = {"name": classes[c], "eigenvalues": result.eigenvalues, "means": means, "sizes": sizes}
    return found


def prepare(run: Path, split: MaskSet, classes: list[str], network: CueNetwork, settings: Settings,
            recompute: bool = False) -> dict:
    """RUN/micro.json and RUN/micro/ (strips + index.json), computed unless they exist; marks in micro.json
    are never dropped without ``recompute``, so clusters made with other settings are an error. Returns
    the micro dict."""
    index_path = run / CACHE / INDEX
    if not recompute and (run / MICRO).is_file():
        saved = json.loads(index_path.read_text()).get("settings") if index_path.is_file() else None
        if saved != asdict(settings):
            raise UserError(f"{run / MICRO} holds clusters made with other settings ({saved}); pass --recompute "
                            f"to cluster again with these (its marks are lost), or keep the settings it was made with")
        return read_micro(run / MICRO)
    triple = run_cues(network, split, len(classes))
    clusters = cluster_classes(triple, classes, settings)
    if not clusters:
        raise UserError(f"no class of {settings.data} has enough foreground positions to cluster; is the cue network trained?")
    micro = new_micro(settings.data, triple[1].shape[1], clusters)
    strips = write_strips(run / CACHE, split, triple, micro, settings.samples, settings.seed)
    write_micro(run / MICRO, micro)
    atomic_write_text(index_path, json.dumps({"settings": asdict(settings), "classes": strips}, indent=1) + "\n")
    return micro
