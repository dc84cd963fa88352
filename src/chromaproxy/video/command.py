"""What ``chromaproxy mine`` does: mine this shard's videos, or merge shards, then build the graph.

With ``mine.shard=i/n`` and n > 1 only the shard's patches are written (the graph needs them all); with
``mine.shards=[DIR, …]`` the shards are merged and the graph built from them; otherwise one process mines
every video and builds the graph. The output folder is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from chromaproxy.errors import UserError
from chromaproxy.video.graph import EDGE_KINDS, GRAPH, build_graph
from chromaproxy.video.mine import PATCHES, merge_shards, mine_shard, parse_shard
from chromaproxy.video.pictures import edge_picture

PICTURE = "edges.png"


def run_mine(cfg: Any, out: Path, progress: Callable[[Path, int], None] | None = None) -> dict[str, Any]:
    """Mine and/or build the graph into ``out``; returns graph.json's summary (or the shard's manifest)."""
    options = cfg.mine
    if (out / PATCHES).exists() or (out / GRAPH).exists():
        raise UserError(f"{out} already holds mined patches; choose a new out=DIR")
    if options.shards:
        nodes, manifest = merge_shards(options.shards)
        out.mkdir(parents=True, exist_ok=True)
    else:
        if options.videos is None:
            raise UserError("chromaproxy mine needs mine.videos=DIR, a folder of video files or of frame folders")
        nodes, manifest = mine_shard(options, out, progress)
        if parse_shard(options.shard)[1] > 1:
            return manifest
    if len(nodes["patches"]) < 4:
        raise UserError(f"only {len(nodes['patches']) // 2} tracks were mined: too few for a graph "
                        "(lower mine.min_box or mine.min_track, or add videos)")
    summary, graph = build_graph(cfg, nodes, manifest, out)
    edge_picture(graph, EDGE_KINDS, out / PICTURE, cfg.seed)
    return summary

