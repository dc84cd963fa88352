"""Motion proposals and tracking (Wang et al. 2017, §3.1): moving regions become tracks of one object.

Proposals come from frame differencing (OpenCV): the thresholded, dilated absolute difference of two
consecutive gray frames, whose connected components above a minimum area are candidate objects. It is
the cheapest motion cue and needs no flow field; camera motion also proposes regions, which the graph's
clustering stage tolerates. Each proposal is followed by OpenCV's KCF tracker (the paper's), from
opencv-contrib; a build without it falls back to CSRT, then MIL, and the manifest records which ran.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # (x, y, w, h) in pixels
FALLBACKS = ("KCF", "CSRT", "MIL")


def tracker_factory() -> tuple[str, Callable[[], object]]:
    """(name, constructor) of the first tracker this OpenCV build has, KCF first."""
    for name in FALLBACKS:
        for module in (cv2, getattr(cv2, "legacy", None)):
            create = getattr(module, f"Tracker{name}_create", None)
            if create is not None:
                return name, create
    raise RuntimeError("this OpenCV build has no KCF, CSRT or MIL tracker; install opencv-contrib-python-headless")


def motion_boxes(previous: np.ndarray, current: np.ndarray, min_side: int, limit: int, threshold: int = 25) -> list[Box]:
    """Square boxes (x, y, s, s) around the largest moving regions between two RGB frames (H, W, 3)."""
    difference = cv2.absdiff(_gray(previous), _gray(current))  # (H, W) uint8
    moving = cv2.dilate((difference > threshold).astype(np.uint8), np.ones((5, 5), np.uint8), iterations=2)
    count, _, stats, _ = cv2.connectedComponentsWithStats(moving)
    regions = sorted(stats[1:count].tolist(), key=lambda s: -s[cv2.CC_STAT_AREA])
    height, width = current.shape[:2]
    boxes = [square_box(x, y, w, h, width, height) for x, y, w, h, _ in regions if max(w, h) >= min_side]
    return [box for box in boxes if box[2] >= min_side][:limit]


def square_box(x: int, y: int, w: int, h: int, width: int, height: int) -> Box:
    """The square of side max(w, h) centred on the box, shifted (and if need be shrunk) into the frame."""
    side = min(max(w, h), width, height)
    left = min(max(x + w // 2 - side // 2, 0), width - side)
    top = min(max(y + h // 2 - side // 2, 0), height - side)
    return int(left), int(top), int(side), int(side)


def crop(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The box's square patch of ``frame`` resized to (size, size, 3) uint8."""
    x, y, w, h = box
    frame_h, frame_w = frame.shape[:2]
    x, y = min(max(x, 0), frame_w - 1), min(max(y, 0), frame_h - 1)
    patch = frame[y : y + max(h, 1), x : x + max(w, 1)]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (5, 5), 0)


class Track:
    """One object followed from its proposal: its tracker, first patch, and the last box it was seen in."""

    def __init__(self, create: Callable[[], object], frame: np.ndarray, box: Box, start: int, size: int) -> None:
        self.tracker = create()
        self.tracker.init(np.ascontiguousarray(frame[:, :, ::-1]), box)  # OpenCV trackers read BGR
        self.start, self.end, self.box = start, start, box
        self.first = crop(frame, box, size)
        self.last: np.ndarray | None = None

    def update(self, frame: np.ndarray, index: int) -> bool:
        """Follow the object into ``frame``; False when the tracker lost it or it left the frame."""
        found, box = self.tracker.update(np.ascontiguousarray(frame[:, :, ::-1]))
        x, y, w, h = (int(round(v)) for v in box)
        height, width = frame.shape[:2]
        if not found or w < 2 or h < 2 or x < 0 or y < 0 or x + w > width or y + h > height:
            return False
        self.box, self.end = (x, y, w, h), index
        return True

    def finish(self, frame: np.ndarray, size: int) -> None:
        self.last = crop(frame, self.box, size)
