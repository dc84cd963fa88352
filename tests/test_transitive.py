"""Transitive invariance's pure parts: the transitive closure, child groups, the triplet ranking loss
against naive references, and a graph's edges as training pairs."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from chromaproxy.config import load_config
from chromaproxy.errors import UserError
from chromaproxy.tasks.transitive import hardest_negatives, split_pairs, triplet_ranking_loss
from chromaproxy.video.graph import GRAPH, child_groups, group_edges, parent_clusters, transitive_pairs
from chromaproxy.video.pairs import graph_pairs
from conftest import tiny_graph


def test_transitive_closure_of_a_hand_made_graph_gives_exactly_the_expected_pairs():
    # tracks 0..3: nodes (0,1), (2,3), (4,5), (6,7); inter edges A=0–B=2 and A=5–B=6
    inter = torch.tensor([[0, 2], [5, 6]])
    pairs = {tuple(p) for p in transitive_pairs(inter).tolist()}
    assert pairs == {(0, 3), (1, 2), (1, 3), (5, 7), (4, 6), (4, 7)}
    assert len(transitive_pairs(inter)) == 6


def test_group_edges_are_every_pair_inside_each_group():
    edges = group_edges([torch.tensor([0, 2, 4, 6]), torch.tensor([9, 11, 13, 15])])
    assert len(edges) == 12 and {tuple(e) for e in edges.tolist()[:6]} == {(0, 2), (0, 4), (0, 6), (2, 4), (2, 6), (4, 6)}


def _naive_top(features: torch.Tensor, members: list[int], k: int) -> dict[int, set[int]]:
    normed = torch.nn.functional.normalize(features, dim=1)
    top = {}
    for i in members:
        others = [j for j in members if j // 2 != i // 2]
        others.sort(key=lambda j: -float(normed[i] @ normed[j]))
        top[i] = set(others[:k])
    return top


def test_child_groups_are_mutual_top_k_of_distinct_tracks():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(6, 16, generator=generator)
    features = centres.repeat_interleave(8, dim=0) + 0.3 * torch.randn(48, 16, generator=generator)  # 6 blobs of 8
    members = torch.arange(48)
    groups = child_groups(features, members, neighbours=5, size=4)
    top = _naive_top(features, list(range(48)), 5)
    assert len(groups) >= 4
    used = torch.cat(groups)
    assert len(used.unique()) == len(used)  # disjoint
    for group in groups:
        nodes = group.tolist()
        assert len(nodes) == 4 and len({n // 2 for n in nodes}) == 4
        assert all(b in top[a] for a in nodes for b in nodes if a != b)


def test_parent_clusters_drop_small_clusters():
    features = torch.cat([torch.randn(30, 8) + 20 * torch.eye(8)[0], torch.randn(3, 8) - 20 * torch.eye(8)[0]])
    parents, kept = parent_clusters(features, k=2, min_size=5, seed=0)
    assert kept[:30].all() and not kept[30:].any()
    assert len(parents[:30].unique()) == 1


def _naive_loss(a, p, n, margin):
    total = 0.0
    for x, xp, xn in zip(a.tolist(), p.tolist(), n.tolist()):
        cos = lambda u, v: sum(i * j for i, j in zip(u, v)) / (sum(i * i for i in u) ** 0.5 * sum(j * j for j in v) ** 0.5)
        total += max(0.0, (1 - cos(x, xp)) - (1 - cos(x, xn)) + margin)
    return total / len(a)


def test_triplet_loss_matches_a_naive_reference():
    generator = torch.Generator().manual_seed(1)
    a, p, n = (torch.randn(7, 5, generator=generator) for _ in range(3))
    assert torch.allclose(triplet_ranking_loss(a, p, n, 0.5), torch.tensor(_naive_loss(a, p, n, 0.5)), atol=1e-6)


def test_triplet_loss_is_zero_when_the_margin_is_met():
    a = torch.tensor([[1.0, 0.0]])
    assert triplet_ranking_loss(a, torch.tensor([[1.0, 0.05]]), torch.tensor([[-1.0, 0.0]]), 0.5).item() == 0.0


def test_triplet_gradient_pulls_the_positive_in_and_pushes_the_negative_out():
    a, p, n = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]], requires_grad=True), torch.tensor([[1.0, 0.2]], requires_grad=True)
    loss = triplet_ranking_loss(a, p, n, 0.5)
    loss.backward()
    assert loss.item() > 0
    with torch.no_grad():
        p2, n2 = p - 0.1 * p.grad, n - 0.1 * n.grad
        assert 1 - torch.cosine_similarity(a, p2) < 1 - torch.cosine_similarity(a, p)  # D(X, X+) down
        assert 1 - torch.cosine_similarity(a, n2) > 1 - torch.cosine_similarity(a, n)  # D(X, X-) up


def test_hardest_negative_is_the_nearest_of_another_group():
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pool = torch.tensor([[1.0, 0.1], [0.9, 0.5], [-1.0, 0.0], [0.1, 1.0]])
    index, valid = hardest_negatives(anchor, pool, torch.tensor([0, 1]), torch.tensor([0, 2, 2, 1]))
    assert index.tolist() == [1, 1] and valid.all()
    _, valid = hardest_negatives(anchor, pool, torch.tensor([0, 0]), torch.zeros(4, dtype=torch.long))
    assert not valid.any()
    loss = triplet_ranking_loss(anchor, anchor, pool[:2], 0.5, valid.float())
    assert loss.item() == 0.0


def test_stacked_pairs_split_into_anchor_and_positive():
    stacked = torch.arange(2 * 3 * 8 * 4, dtype=torch.float).view(2, 3, 8, 4)
    anchor, positive = split_pairs(stacked)
    assert torch.equal(anchor, stacked[:, :, :4]) and torch.equal(positive, stacked[:, :, 4:])


def test_graph_pairs_hold_the_chosen_edges_in_both_directions():
    folder = tiny_graph()
    graph = load_file(str(folder / GRAPH))
    counts = {edges: len(graph_pairs(load_config(None, ["tasks=[transitive]", f"graph={folder}", f"transitive.edges={edges}"])))
              for edges in ("intra", "inter", "both", "transitive")}
    assert counts == {"intra": 16, "inter": 8, "both": 24, "transitive": 48}
    pairs = graph_pairs(load_config(None, ["tasks=[transitive]", f"graph={folder}", "transitive.edges=inter"]))
    assert torch.equal(pairs.images[0, :, :32], graph["patches"][0]) and torch.equal(pairs.images[0, :, 32:], graph["patches"][2])
    assert torch.equal(pairs.images[4, :, :32], graph["patches"][2]) and pairs.pseudo_labels[4] == graph["parent"][2]
    with pytest.raises(UserError, match="data.image_size=32"):
        graph_pairs(load_config(None, ["tasks=[transitive]", f"graph={folder}", "data.image_size=16"]))
