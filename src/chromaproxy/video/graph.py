"""The graph of Wang et al. 2017 (§3.1–3.2): intra-instance edges from tracks, inter-instance edges from
clusters of features, and the transitive pairs the two imply.

Node 2t and 2t + 1 are the first and last patch of track t (an intra-instance edge). Inter-instance edges:
k-means of every patch's features (``cluster/kmeans.py``: faiss or scikit-learn) into parent clusters,
small ones dropped, then child groups of ``group_size`` patches of different tracks that are all in each
other's top-k cosine neighbours; every pair inside a group is an edge. Transitivity: A–B inter with
A–A′ and B–B′ intra gives ⟨A, B′⟩, ⟨A′, B⟩, ⟨A′, B′⟩. Everything is seeded, so a graph rebuilds exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from chromaproxy.checkpoint import save_tensors
from chromaproxy.cluster.kmeans import kmeans
from chromaproxy.data.augment import to_float
from chromaproxy.io import atomic_write_text
from chromaproxy.network import Network, load_backbone

GRAPH, MANIFEST = "graph.safetensors", "graph.json"
EDGE_KINDS = ("intra", "inter", "transitive")


def initial_network(cfg: Any) -> tuple[Network, str]:
    """The network whose features cluster the patches: ``mine.backbone`` (a run) or the config's seeded random init."""
    if cfg.mine.backbone is not None:
        return load_backbone(Path(cfg.mine.backbone)), f"{cfg.mine.backbone} (checkpoints/last)"
    torch.manual_seed(cfg.seed)
    return Network.backbone_only(cfg).eval(), f"random init of model {cfg.model.name} (seed {cfg.seed})"


@torch.no_grad()
def patch_features(network: Network, patches: torch.Tensor, tap: str | None, batch: int = 256) -> torch.Tensor:
    """Average-pooled features (N, C) of uint8 patches (N, 3, S, S) at ``tap`` (None = the deepest)."""
    name = network.backbone.resolve_taps([tap or network.backbone.feature_info[-1].name])[0]
    parts = []
    for start in range(0, len(patches), batch):
        rgb = to_float(patches[start : start + batch])
        parts.append(network.backbone.forward_features(network.input(rgb), [name])[name].mean(dim=(2, 3)))  # (b, C)
    return torch.cat(parts) if parts else torch.zeros(0, network.backbone.tap_info(name).channels)


def parent_clusters(features: torch.Tensor, k: int, min_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(parent id (N,), kept (N,) bool): k-means into at most N // 2 clusters, members of small ones not kept."""
    k = max(1, min(k, len(features) // 2))
    parents = kmeans(features, k, seed) if k > 1 else torch.zeros(len(features), dtype=torch.int64)
    sizes = torch.bincount(parents, minlength=k)
    return parents, sizes[parents] >= max(min_size, 1)


def child_groups(features: torch.Tensor, members: torch.Tensor, neighbours: int, size: int) -> list[torch.Tensor]:
    """Disjoint groups of ``size`` nodes among ``members``, each node in every other's top-``neighbours``
    (cosine), no two from one track; greedy in node order, candidates in order of similarity."""
    normed = F.normalize(features[members].float(), dim=1)
    similarity = normed @ normed.T  # (n, n)
    tracks = members // 2
    similarity[tracks[:, None] == tracks[None, :]] = -float("inf")  # self and own track excluded
    k = min(neighbours, len(members) - 1)
    if k < size - 1:
        return []
    top = similarity.topk(k, dim=1)
    near = torch.zeros_like(similarity, dtype=torch.bool).scatter_(1, top.indices, top.values > -float("inf"))
    mutual = near & near.T
    used = torch.zeros(len(members), dtype=torch.bool)
    groups = []
    for node in range(len(members)):
        group = [] if used[node] else _grow(node, top.indices[node].tolist(), mutual, used, size)
        if group:
            used[group] = True
            groups.append(members[group])
    return groups


def _grow(node: int, candidates: list[int], mutual: torch.Tensor, used: torch.Tensor, size: int) -> list[int]:
    group = [node]
    for other in candidates:
        if not used[other] and all(mutual[other, g] for g in group):
            group.append(other)
        if len(group) == size:
            return group
    return []


def group_edges(groups: list[torch.Tensor]) -> torch.Tensor:
    """Every pair (E, 2) inside each group: the inter-instance edges."""
    pairs = [torch.combinations(group, 2) for group in groups]
    return torch.cat(pairs) if pairs else torch.zeros(0, 2, dtype=torch.int64)


def transitive_pairs(inter: torch.Tensor) -> torch.Tensor:
    """⟨A, B′⟩, ⟨A′, B⟩, ⟨A′, B′⟩ (3E, 2) for inter edges (E, 2) ⟨A, B⟩; A′ = A xor 1, A's track partner."""
    a, b = inter[:, 0], inter[:, 1]
    return torch.cat([torch.stack(pair, dim=1) for pair in ((a, b ^ 1), (a ^ 1, b), (a ^ 1, b ^ 1))])


def build_graph(cfg: Any, nodes: dict[str, torch.Tensor], manifest: dict[str, Any], out: Path
                ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Cluster, group and close the mined ``nodes``; write graph.safetensors + graph.json into ``out``;
    returns the summary and the graph's tensors."""
    options = cfg.mine
    network, source = initial_network(cfg)
    features = patch_features(network, nodes["patches"], options.tap)
    parents, kept = parent_clusters(features, options.clusters, options.min_cluster, cfg.seed)
    groups = []
    for parent in parents[kept].unique().tolist():
        members = torch.nonzero(parents == parent).flatten()
        groups += child_groups(features, members, options.neighbours, options.group_size)
    inter = group_edges(groups)
    edges = {"intra": torch.arange(0, len(parents), 2)[:, None] + torch.tensor([[0, 1]]), "inter": inter,
             "transitive": transitive_pairs(inter)}
    graph = {**nodes, "parent": parents, "kept": kept, **edges}
    save_tensors(out / GRAPH, graph)
    summary = {**manifest, "features": source, "tap": options.tap, "seed": cfg.seed, "nodes": len(parents),
               "parent_clusters": int(parents.max()) + 1 if len(parents) else 0,
               "kept_clusters": len(parents[kept].unique()), "child_groups": len(groups),
               "edges": {kind: len(pairs) for kind, pairs in edges.items()}, "options": vars(options)}
    atomic_write_text(out / MANIFEST, json.dumps(summary, indent=2) + "\n")
    return summary, graph
