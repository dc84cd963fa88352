"""Mining tracked patches from videos (Wang et al. 2017, §3.1), sharded by video.

Each track gives two graph nodes, its first and last patch (node 2t and 2t + 1): an intra-instance edge.
A shard (``mine.shard=i/n``) mines every n-th video from the i-th into its own folder, so many machines
can mine one large collection; ``mine.shards=[DIR, …]`` merges their patches, renumbering tracks and
videos, before the graph stage. Frames are streamed: a video costs its live tracks, never its length.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from chromaproxy.checkpoint import save_tensors
from chromaproxy.errors import UserError
from chromaproxy.io import atomic_write_text
from chromaproxy.video.frames import list_videos, read_frames
from chromaproxy.video.tracking import Track, motion_boxes, tracker_factory

PATCHES, MANIFEST = "patches.safetensors", "mine.json"


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/n"`` → (i, n) with 0 <= i < n."""
    index, _, count = shard.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
        raise UserError(f"mine.shard={shard!r} must be i/n with 0 <= i < n, e.g. mine.shard=0/4")
    return int(index), int(count)


def shard_videos(options: Any) -> list[Path]:
    """The videos of this shard: the folder's, minus ``mine.exclude``, every n-th from the i-th."""
    index, count = parse_shard(options.shard)
    videos = [v for v in list_videos(options.videos) if v.stem not in set(options.exclude)]
    return videos[index::count]


def mine_video(path: Path, options: Any, create: Any) -> list[Track]:
    """Tracks of ``path`` that lasted at least ``mine.min_track`` frames, each with first and last patch."""
    done: list[Track] = []
    active: list[Track] = []
    previous = None
    for index, frame in enumerate(read_frames(path, options.stride, options.max_side)):
        active = _advance(active, frame, previous, index, options, done)
        if previous is not None and index % options.propose_every == 0:
            boxes = motion_boxes(previous, frame, options.min_box, options.boxes_per_frame)
            active += [Track(create, frame, box, index, options.patch) for box in boxes]
        previous = frame
    for track in active:
        if track.end - track.start + 1 >= options.min_track:
            track.finish(previous, options.patch)
            done.append(track)
    return done


def _advance(active: list[Track], frame, previous, index: int, options: Any, done: list[Track]) -> list[Track]:
    """Update every live track on ``frame``; finished ones (full length, or lost after min_track) go to ``done``."""
    alive = []
    for track in active:
        if track.update(frame, index):
            if index - track.start + 1 >= options.track_length:
                track.finish(frame, options.patch)
                done.append(track)
            else:
                alive.append(track)
        elif track.end - track.start + 1 >= options.min_track:
            track.finish(previous, options.patch)
            done.append(track)
    return alive


def mine_shard(options: Any, out: Path, progress: Any = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Mine this shard's videos into ``out`` (patches.safetensors + mine.json); returns what it wrote:
    the nodes' tensors and the manifest."""
    tracker, create = tracker_factory()
    videos = shard_videos(options)
    nodes: dict[str, list] = {"patches": [], "video": [], "frame": []}
    per_video = {}
    for number, path in enumerate(videos):
        tracks = mine_video(path, options, create)
        per_video[path.stem] = len(tracks)
        for track in tracks:
            nodes["patches"] += [track.first, track.last]
            nodes["video"] += [number, number]
            nodes["frame"] += [track.start * options.stride, track.end * options.stride]
        if progress is not None:
            progress(path, len(tracks))
    manifest = {"tracker": tracker, "shard": options.shard, "videos": [str(v) for v in videos], "tracks": per_video}
    tensors = _tensors(nodes, options.patch)
    save_patches(out, tensors, manifest)
    return tensors, manifest


def _tensors(nodes: dict[str, list], side: int) -> dict[str, torch.Tensor]:
    patches = np.stack(nodes["patches"]) if nodes["patches"] else np.zeros((0, side, side, 3), np.uint8)
    return {
        "patches": torch.from_numpy(patches).permute(0, 3, 1, 2).contiguous(),  # (N, 3, S, S), N = 2 x tracks
        "video": torch.tensor(nodes["video"], dtype=torch.int64),
        "frame": torch.tensor(nodes["frame"], dtype=torch.int64),
    }


def save_patches(out: Path, tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / PATCHES, tensors)
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def merge_shards(folders: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The patches of several shard folders as one set: video ids offset so they stay distinct."""
    parts, manifests = [], []
    for folder in map(Path, folders):
        if not (folder / PATCHES).is_file():
            raise UserError(f"{folder} is not a mined shard (no {PATCHES}); mine it with mine.shard=i/n out={folder}")
        parts.append(load_file(str(folder / PATCHES)))
        manifests.append(json.loads((folder / MANIFEST).read_text()))
    offsets = np.cumsum([0] + [len(m["videos"]) for m in manifests[:-1]])
    merged = {
        "patches": torch.cat([p["patches"] for p in parts]),
        "video": torch.cat([p["video"] + int(o) for p, o in zip(parts, offsets)]),
        "frame": torch.cat([p["frame"] for p in parts]),
    }
    manifest = {"tracker": sorted({m["tracker"] for m in manifests}), "shards": [str(f) for f in folders],
                "videos": [v for m in manifests for v in m["videos"]], "tracks": {k: n for m in manifests for k, n in m["tracks"].items()}}
    return merged, manifest
