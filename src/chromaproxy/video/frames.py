"""Frames of videos, streamed one at a time so a long video never sits in memory whole.

A video is a file (mp4, avi, …) or a folder of frame images (one sub-folder per video, as DAVIS ships).
Files are decoded with PyAV: it wraps FFmpeg's libraries in a wheel (no system ffmpeg, unlike
imageio-ffmpeg's pipe to a binary), decodes lazily frame by frame, and raises a typed error for a corrupt
stream, which OpenCV's ``VideoCapture`` hides behind an empty read. OpenCV still resizes (INTER_AREA).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from chromaproxy.errors import UserError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
FRAME_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def list_videos(folder: str | Path) -> list[Path]:
    """Video files and frame sub-folders directly in ``folder``, sorted by name (hidden entries skipped)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"video folder not found: {root} (set mine.videos=DIR, a folder of video files or of frame folders)")
    videos = [p for p in sorted(root.iterdir()) if not p.name.startswith(".") and _is_video(p)]
    if not videos:
        raise UserError(f"{root} holds no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) and no folders of frames")
    return videos


def _is_video(path: Path) -> bool:
    if path.is_dir():
        return any(f.suffix.lower() in FRAME_EXTENSIONS for f in path.iterdir())
    return path.suffix.lower() in VIDEO_EXTENSIONS


def read_frames(path: Path, stride: int = 1, max_side: int | None = None) -> Iterator[np.ndarray]:
    """Every ``stride``-th frame of ``path`` as (H, W, 3) uint8 RGB, longer side at most ``max_side``;
    an unreadable or empty video is a one-line ``UserError`` naming the file."""
    frames = _folder_frames(path) if path.is_dir() else _file_frames(path)
    count = 0
    for index, frame in enumerate(frames):
        if index % stride == 0:
            count += 1
            yield _fit(frame, max_side)
    if count == 0:
        raise UserError(f"{path}: the video holds no frames")


def _file_frames(path: Path) -> Iterator[np.ndarray]:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: no video stream in the file")
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or err
        raise UserError(f"{path}: cannot decode the video ({reason})") from None


def _folder_frames(path: Path) -> Iterator[np.ndarray]:
    for file in sorted(f for f in path.iterdir() if f.suffix.lower() in FRAME_EXTENSIONS):
        try:
            with Image.open(file) as image:
                yield np.asarray(image.convert("RGB"))
        except OSError as err:
            raise UserError(f"{file}: cannot read the frame ({err})") from None


def _fit(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    height, width = frame.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return np.ascontiguousarray(frame)
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
