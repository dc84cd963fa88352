"""A mined graph's edges as training images for the transitive task, through the ordinary data path.

Each edge ⟨X, X⁺⟩ becomes one image (3, 2S, S): X stacked above X⁺, with X's parent cluster as its
pseudo-label. The trainer then samples, augments (one crop and flip for both halves) and batches pairs
like any images, with exact resume and DDP for free; the task splits them again and finds negatives in
the batch by parent cluster. Each edge appears in both directions. ``transitive.edges`` picks the kinds:
intra (tracking only), inter (clustering only), both (no transitivity), transitive (all three).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from chromaproxy.data.types import UNLABELED, ImageSet
from chromaproxy.errors import UserError
from chromaproxy.video.graph import GRAPH

GRAPH_TASKS = ("transitive",)  # tasks that train on graph pairs instead of data.name's images
EDGE_CHOICES = {"intra": ("intra",), "inter": ("inter",), "both": ("intra", "inter"), "transitive": ("intra", "inter", "transitive")}


def trains_on_graph(cfg: Any) -> bool:
    return cfg.graph is not None or any(name in GRAPH_TASKS for name in cfg.tasks)


def graph_pairs(cfg: Any) -> ImageSet:
    """The edges ``transitive.edges`` selects as stacked pairs (E, 3, 2S, S) with parent ids (E,)."""
    if cfg.graph is None:
        raise UserError("tasks=[transitive] trains on a mined graph: set graph=DIR "
                        "(mine one with: chromaproxy mine configs/transitive-davis-quick.yaml out=runs/ti-graph)")
    path = Path(cfg.graph) / GRAPH
    if not path.is_file():
        raise UserError(f"graph={cfg.graph} holds no {GRAPH}; mine one with: chromaproxy mine CONFIG out={cfg.graph}")
    graph = load_file(str(path))
    kinds = EDGE_CHOICES[cfg.transitive.edges]
    pairs = torch.cat([graph[kind] for kind in kinds])
    if len(pairs) == 0:
        raise UserError(f"graph={cfg.graph} has no {'/'.join(kinds)} edges; mine more videos or lower mine.min_cluster")
    pairs = torch.cat([pairs, pairs.flip(1)])  # both directions, (2E, 2)
    patches = graph["patches"]
    if patches.shape[-1] != cfg.data.image_size:
        raise UserError(f"graph={cfg.graph} holds {patches.shape[-1]} px patches but data.image_size={cfg.data.image_size}; "
                        f"set data.image_size={patches.shape[-1]} or mine again with mine.patch={cfg.data.image_size}")
    stacked = torch.cat([patches[pairs[:, 0]], patches[pairs[:, 1]]], dim=2)  # (2E, 3, 2S, S): X above X⁺
    return ImageSet(stacked, torch.full((len(pairs),), UNLABELED), [], pseudo_labels=graph["parent"][pairs[:, 0]])
