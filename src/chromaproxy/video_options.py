"""The ``mine.*`` config section: patch mining from video and the graph of Wang et al. 2017 (§3.1).

Outside ``video/`` so that ``config.py`` builds the ``Config`` class without importing OpenCV and PyAV.
Paper values (REFERENCE.md) are the defaults where they exist: 30-frame tracks, K = 5000 parent clusters,
clusters under 100 members dropped, child groups of 4 mutual top-10 neighbours; the quick preset scales
them down to a few thousand patches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from chromaproxy.ranges import NonNegative, Positive, Range


@dataclass
class MineOptions:
    videos: str | None = None  # folder of video files (mp4, avi, …) or of frame sub-folders (one per video, as DAVIS)
    exclude: list[str] = field(default_factory=list)  # videos (file or folder names, no suffix) left out, e.g. retrieval's held-out ones
    stride: Positive[int] = 1  # decode every Nth frame
    max_side: Positive[int] | None = 320  # frames are resized so their longer side is at most this (None = as decoded)
    patch: Positive[int] = 32  # side of the saved patches: the backbone's input (data.image_size)
    track_length: Positive[int] = 30  # frames a track follows its object (the paper's 30)
    min_track: Positive[int] = 10  # a track lost earlier than this many frames is dropped
    propose_every: Positive[int] = 10  # frames between two rounds of motion proposals
    boxes_per_frame: Positive[int] = 4  # largest moving regions tracked per round
    min_box: Positive[int] = 16  # smallest proposal side in pixels
    shard: str = "0/1"  # i/n: mine every n-th video from the i-th; n > 1 writes that shard only (merge with mine.shards)
    shards: list[str] = field(default_factory=list)  # shard folders to merge, then build the graph (no mining)
    backbone: str | None = None  # a chromaproxy run whose backbone gives the patch features; None = this config's random init (seed)
    tap: str | None = None  # tap whose average-pooled features are clustered; None = the deepest
    clusters: Positive[int] = 5000  # k-means parent clusters (fewer when there are fewer patches)
    min_cluster: NonNegative[int] = 100  # parent clusters with fewer members are dropped
    neighbours: Positive[int] = 10  # child groups: members are all in each other's top-k (cosine)
    group_size: Annotated[int, Range(2)] = 4  # patches per child group (every pair in it is an edge)
