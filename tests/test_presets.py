"""Every shipped preset builds its network (backbone, input, task heads) and computes a finite loss on a
batch at its own image size, so a paper-scale preset that only a GPU will train cannot ship broken."""

from __future__ import annotations

import pytest
import torch

from chromaproxy.config import apply_overrides, load_config
from chromaproxy.data.augment import to_float
from chromaproxy.data.types import ImageSet
from chromaproxy.network import Network
from conftest import TASK_REQUIRED, preset_overrides
from test_config import PRESETS


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_network_builds_and_gives_a_finite_loss(preset, one_thread):
    cfg = load_config(preset, preset_overrides(preset))
    apply_overrides(cfg, [f"{k}={v}" for task in cfg.tasks for k, v in TASK_REQUIRED.get(task, {}).items()])
    side = cfg.data.image_size
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (4, 3, side, side), dtype=torch.uint8, generator=generator)
    images = ImageSet(pixels, torch.arange(4) % 10, [f"class{k}" for k in range(10)])
    torch.manual_seed(0)
    network = Network.from_config(cfg, num_classes=10, images=images).train()
    rgb = to_float(pixels[:2])
    outputs = network(rgb, images.labels[:2], generator, pseudo_labels=images.labels[:2], recolorized=1 - rgb)
    assert torch.isfinite(outputs["loss"]), outputs
    outputs["loss"].backward()
    trained = network.backbone if all(task.reads_backbone for task in network.tasks.values()) else network
    assert any(p.grad is not None for p in trained.parameters())
