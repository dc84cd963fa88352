"""docs/adding-a-task.md's jigsaw walk-through, run from the doc's own text: the code a reader copies builds,
cuts the right tiles and learns."""

from __future__ import annotations

import re
import sys
import types
import typing

import pytest
import torch

from chromaproxy.config_keys import describe_type
from chromaproxy.data.sources import CIFAR10_NORMALISATION
from chromaproxy.models import build_backbone
from chromaproxy.models.inputs import ModelInput
from chromaproxy.network import Network
from chromaproxy.tasks.base import TaskContext
from conftest import REPO

DOC = REPO / "docs" / "adding-a-task.md"


@pytest.fixture(scope="module")
def jigsaw():
    walkthrough = DOC.read_text().split("## Walk-through: a jigsaw task", 1)[1]
    code = re.search(r"```python\n(.*?)```", walkthrough, re.S).group(1)
    module = types.ModuleType("jigsaw_from_doc")
    sys.modules[module.__name__] = module
    exec(compile(code, str(DOC), "exec"), module.__dict__)
    yield module
    del sys.modules[module.__name__]


def _network(jigsaw):
    torch.manual_seed(0)
    backbone = build_backbone("nin", in_channels=3, width=0.25, blocks=3)
    task = jigsaw.JigsawTask(jigsaw.JigsawOptions(), TaskContext(backbone, 0))
    return Network(ModelInput("rgb", *CIFAR10_NORMALISATION), backbone, {"jigsaw": task}, {"jigsaw": 1.0})


def test_the_doc_code_cuts_each_slot_from_the_tile_its_order_names(jigsaw):
    rgb = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    task = _network(jigsaw).tasks["jigsaw"]
    tiles, targets = task.make_batch(rgb, torch.zeros(5), torch.Generator().manual_seed(1))
    assert tiles.shape == (20, 3, 12, 12) and targets.shape == (5,)
    corners = [(2, 2), (2, 18), (18, 2), (18, 18)]  # a centred 2x2 grid of 12-px tiles with 4-px gaps
    for b in range(5):
        for slot, tile in enumerate(jigsaw.ORDERS[targets[b]].tolist()):
            top, left = corners[tile]
            assert torch.equal(tiles[slot * 5 + b], rgb[b, :, top : top + 12, left : left + 12])


def test_the_doc_task_learns_on_a_fixed_batch_and_its_options_describe_themselves(jigsaw):
    network = _network(jigsaw).train()
    rgb = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batch = network.tasks["jigsaw"].make_batch(rgb, torch.zeros(16), torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = network.task_outputs("jigsaw", *batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    hints = typing.get_type_hints(jigsaw.JigsawOptions, vars(jigsaw), include_extras=True)
    assert [describe_type(hints[key]) for key in ("tile", "gap")] == ["int >= 1", "int >= 0"]
