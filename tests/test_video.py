"""Video decoding, proposals, tracking and mining on tiny synthetic footage (and one real clip)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from chromaproxy.config import load_config
from chromaproxy.errors import UserError
from chromaproxy.video.command import run_mine
from chromaproxy.video.frames import list_videos, read_frames
from chromaproxy.video.graph import GRAPH
from chromaproxy.video.mine import PATCHES
from chromaproxy.video.tracking import Track, motion_boxes, tracker_factory
from conftest import data_root

SIDE = 14


def square_frames(count: int, start: tuple[int, int], step: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """(48, 96, 3) frames: a fixed textured background and a bright square moving ``step`` px per frame."""
    background = np.random.default_rng(seed).integers(40, 90, (48, 96, 3), dtype=np.uint8)
    frames = []
    for t in range(count):
        frame = background.copy()
        x, y = start[0] + step[0] * t, start[1] + step[1] * t
        frame[y : y + SIDE, x : x + SIDE] = (230, 60 + 40 * seed, 30)
        frame[y + 4 : y + 8, x + 4 : x + 8] = (20, 20, 200)  # texture for the tracker
        frames.append(frame)
    return frames


def write_video(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    return folder


def test_a_moving_square_is_proposed_and_tracked(one_thread):
    frames = square_frames(22, start=(4, 10), step=(3, 1))
    boxes = motion_boxes(frames[0], frames[1], min_side=8, limit=2)
    assert boxes and abs(boxes[0][0] + boxes[0][2] / 2 - (7 + SIDE / 2)) <= 5
    name, create = tracker_factory()
    assert name == "KCF"
    true_box = (7, 11, SIDE, SIDE)
    track = Track(create, frames[1], true_box, 1, 16)
    for t in range(2, 22):
        assert track.update(frames[t], t)
    x, y, w, h = track.box
    assert abs(x + w / 2 - (4 + 3 * 21 + SIDE / 2)) <= 3 and abs(y + h / 2 - (10 + 21 + SIDE / 2)) <= 3


def test_frames_are_streamed_with_stride_and_size():
    clip = data_root() / "clips" / "bikes.mp4"
    if not clip.is_file():
        pytest.skip("clips/bikes.mp4 not found")
    frames = read_frames(clip, stride=3, max_side=80)
    assert inspect.isgenerator(frames)
    first = [next(frames) for _ in range(3)]
    assert all(max(f.shape[:2]) == 80 and f.dtype == np.uint8 and f.shape[2] == 3 for f in first)


@pytest.mark.parametrize("content", [b"", b"\x00\x01 not a video" * 50], ids=["empty", "corrupt"])
def test_unreadable_video_is_one_line_naming_the_file(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(UserError) as error:
        list(read_frames(bad))
    message = str(error.value)
    assert str(bad) in message and "\n" not in message


def test_a_frame_folder_without_readable_frames_names_the_file(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "00000.jpg").write_text("no jpeg")
    assert list_videos(tmp_path) == [tmp_path / "v"]
    with pytest.raises(UserError, match="00000.jpg"):
        list(read_frames(tmp_path / "v"))


def _videos(root: Path) -> Path:
    for seed in range(3):
        write_video(root / f"clip{seed}", square_frames(24, start=(4, 6 + 6 * seed), step=(3, 1), seed=seed))
    return root


def _cfg(videos: Path, *extra: str):
    return load_config(None, [
        "tasks=[transitive]", "model.width=0.125", "model.blocks=3", f"mine.videos={videos}", "mine.propose_every=4",
        "mine.track_length=8", "mine.min_track=4", "mine.min_box=8", "mine.clusters=2", "mine.min_cluster=0",
        "mine.neighbours=3", "mine.group_size=2", "mine.max_side=96", *extra,
    ])


def test_the_mined_graph_is_reproducible_from_its_seed(tmp_path, one_thread):
    videos = _videos(tmp_path / "videos")
    first = run_mine(_cfg(videos), tmp_path / "a")
    run_mine(_cfg(videos), tmp_path / "b")
    a, b = load_file(str(tmp_path / "a" / GRAPH)), load_file(str(tmp_path / "b" / GRAPH))
    assert first["nodes"] >= 6 and first["edges"]["inter"] > 0 and first["tracker"] == "KCF"
    assert (tmp_path / "a" / "edges.png").is_file()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(UserError, match="already holds"):
        run_mine(_cfg(videos), tmp_path / "a")


def test_shards_merge_into_the_same_patches(tmp_path, one_thread):
    videos = _videos(tmp_path / "videos")
    run_mine(_cfg(videos, "mine.shard=0/2"), tmp_path / "s0")
    run_mine(_cfg(videos, "mine.shard=1/2"), tmp_path / "s1")
    assert not (tmp_path / "s0" / GRAPH).exists()
    merged = run_mine(_cfg(videos, f"mine.shards=[{tmp_path / 's0'},{tmp_path / 's1'}]"), tmp_path / "m")
    whole = run_mine(_cfg(videos), tmp_path / "w")
    assert merged["tracks"] == whole["tracks"] and merged["nodes"] == whole["nodes"]
    shard_patches = load_file(str(tmp_path / "s0" / PATCHES))["patches"]
    assert torch.equal(load_file(str(tmp_path / "m" / GRAPH))["patches"][: len(shard_patches)], shard_patches)
