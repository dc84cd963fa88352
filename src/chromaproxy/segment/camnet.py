"""A small CAM network: the stand-in cue network of micro-annotation until a SEC run supplies its own.

Five 3x3 conv + BN + ReLU layers (stride 2 three times: a 160 px canvas gives 20 x 20 maps), then a 1x1
classifier per foreground class whose output is the class activation map (Zhou et al. 2016); the image
score is its global average, trained with a multi-label logistic loss on image-level labels. Class 0
(background) gets an all-zero CAM, as SEC draws background cues from elsewhere. ``__call__`` gives the
(cams, features, labels) triple micro-annotation works on; the features are the last ReLU's output, the
maps the CAMs are computed from. Saved as RUN/cue_network.safetensors + RUN/cue_network.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from chromaproxy.checkpoint import save_tensors
from chromaproxy.errors import UserError
from chromaproxy.io import atomic_write_text

WEIGHTS, SETTINGS = "cue_network.safetensors", "cue_network.json"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # photo statistics, to centre the input


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CamNetwork(nn.Module):
    """uint8 RGB (B, 3, S, S) → cams (B, K, S/8, S/8), features (B, width·4, S/8, S/8), labels (B, K)."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.num_classes, self.width = num_classes, width
        self.body = nn.Sequential(*_block(3, width, 2), *_block(width, 2 * width, 2), *_block(2 * width, 2 * width, 1),
                                  *_block(2 * width, 4 * width, 2), *_block(4 * width, 4 * width, 1))
        self.classify = nn.Conv2d(4 * width, num_classes - 1, 1)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground CAMs (B, K-1, h, w) and the features they come from (B, C, h, w)."""
        features = self.body((images.float() / 255 - self.mean) / self.std)
        return self.classify(features), features

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """The cue triple; ``labels`` (B, K) bool when known (training images), else predicted (score > 0)."""
        foreground, features = self.maps(images)
        cams = torch.cat([torch.zeros_like(foreground[:, :1]), foreground], dim=1)  # (B, K, h, w), class 0 = 0
        if labels is None:
            scores = foreground.mean(dim=(2, 3))  # (B, K-1)
            labels = torch.cat([torch.ones_like(scores[:, :1], dtype=torch.bool), scores > 0], dim=1)
        return cams, features, labels.bool()


def label_loss(network: CamNetwork, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label logistic loss of the CAMs' global averages against the foreground labels (B, K)."""
    scores = network.maps(images)[0].mean(dim=(2, 3))  # (B, K-1)
    return F.binary_cross_entropy_with_logits(scores, labels[:, 1:].float())


def train_cam_network(images: torch.Tensor, labels: torch.Tensor, steps: int, batch_size: int = 32,
                      width: int = 32, seed: int = 0, lr: float = 2e-3) -> CamNetwork:
    """Adam on random batches of the training photos (uint8 (N, 3, S, S)), each flipped left-right with
    probability 1/2; ``labels`` (N, K) bool image-level labels."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    network = CamNetwork(labels.shape[1], width)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr, weight_decay=1e-4)
    network.train()
    for _ in range(steps):
        index = torch.randint(len(images), (batch_size,), generator=generator)
        batch = images[index]
        flip = torch.rand(batch_size, generator=generator) < 0.5
        batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        loss = label_loss(network, batch, labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network.eval()


def save_cam_network(network: CamNetwork, run: Path, data: str, classes: list[str]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    save_tensors(run / WEIGHTS, network.state_dict())
    settings = {"data": data, "classes": classes, "width": network.width}
    atomic_write_text(run / SETTINGS, json.dumps(settings, indent=1) + "\n")


def load_cam_network(run: Path) -> tuple[CamNetwork, dict]:
    """The network of RUN (eval mode) and its settings (``data``: the mask dataset, ``classes``)."""
    if not (run / SETTINGS).is_file() or not (run / WEIGHTS).is_file():
        raise UserError(f"{run} holds no cue network ({SETTINGS} + {WEIGHTS}); train one with "
                        f"'python benchmarks/micro_annotation.py --data pets3 --out {run}'")
    try:
        settings = json.loads((run / SETTINGS).read_text())
        network = CamNetwork(len(settings["classes"]), settings["width"])
        network.load_state_dict(load_file(str(run / WEIGHTS)))
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{run}'s cue network cannot be loaded ({first[:160]}); train it again") from None
    return network.eval(), settings
