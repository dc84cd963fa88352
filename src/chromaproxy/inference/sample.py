"""``chromaproxy sample``: draw images from an image-model run (``pixelcnn``, ``grayscale_pixelcnn``,
``pyramid_pixelcnn``) and tile them into one PNG.

Decoding (thesis §4.4): ordinary sampling; ``variance_reduction`` r lowers every logistic component's
log-scale by r (Figure 4.4: 0.5 and above give cleaner, more coherent images); ``map`` = MAP sampling, a
component drawn by its weight, then that component's mode. A Grayscale PixelCNN can also colour real
images (Figure 4.3): the test images' 4-bit gray, then X ~ p(X | X̂), written gray | samples | truth.
The Polyak-averaged weights are used when the run kept them (``load_network``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromaproxy.errors import UserError
from chromaproxy.pixelcnn.auxiliary import quantised_gray
from chromaproxy.pixelcnn.image_models import Decode, GrayscalePixelCNN, gray_picture
from chromaproxy.tasks.image_model import ImageModelTask

BATCH = 64  # images drawn together: the cached sampler's per-pixel steps are batched over them


def image_model_task(network, run: Path) -> ImageModelTask:
    """The run's image-model task, or a one-line error naming the tasks that have one."""
    for task in network.tasks.values():
        if isinstance(task, ImageModelTask):
            return task
    raise UserError(f"{run} trained {list(network.tasks)}, not an image model; sample from a run of "
                    "configs/pixelcnn-*.yaml, grayscale-pixelcnn-*.yaml or pyramid-pixelcnn-*.yaml")


@torch.no_grad()
def draw_stages(task: ImageModelTask, count: int, size: int, seed: int, decode: Decode) -> list[torch.Tensor]:
    """Every factor's draw for ``count`` images (the last: (N, 3, size, size) of 0..255; a pyramid's smaller
    images before it, a grayscale model's X̂ as gray), ``BATCH`` images at a time from one seeded generator."""
    device = next(task.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    task.check_size(size)
    batches = [task.model.sample_stages(min(BATCH, count - start), size, generator, decode) for start in range(0, count, BATCH)]
    return [torch.cat(stage) for stage in zip(*batches)]


def draw_images(task: ImageModelTask, count: int, size: int, seed: int, decode: Decode) -> torch.Tensor:
    return draw_stages(task, count, size, seed, decode)[-1]


@torch.no_grad()
def colour_gray_images(task: ImageModelTask, images: torch.Tensor, draws: int, seed: int, decode: Decode) -> list[torch.Tensor]:
    """Figure 4.3: for 8-bit images (N, 3, H, W), columns gray X̂ | ``draws`` samples of p(X | X̂) | truth."""
    if not isinstance(task.model, GrayscalePixelCNN):
        raise UserError("--gray-from colours 4-bit gray images: it needs a grayscale_pixelcnn run")
    generator = torch.Generator(images.device).manual_seed(seed)
    gray = quantised_gray(images)  # (N, 1, H, W) in 0..15
    return [gray_picture(gray), *(task.model.colourize(gray, generator, decode) for _ in range(draws)), images]


def tile(images: torch.Tensor, columns: int, gap: int = 2) -> np.ndarray:
    """(N, 3, H, W) of 0..255 → one (rows·(H+gap), columns·(W+gap), 3) uint8 picture, white gaps."""
    count, _, height, width = images.shape
    rows = -(-count // columns)
    canvas = np.full((rows * (height + gap) + gap, columns * (width + gap) + gap, 3), 255, dtype=np.uint8)
    for index, image in enumerate(images.clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()):
        top, left = gap + (index // columns) * (height + gap), gap + (index % columns) * (width + gap)
        canvas[top : top + height, left : left + width] = image
    return canvas


def save_picture(canvas: np.ndarray, path: Path, scale: int = 1) -> Path:
    """Write a PNG atomically (temporary name, then rename), enlarged ``scale`` times without smoothing."""
    picture = Image.fromarray(canvas)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    picture.save(tmp, format="PNG")
    tmp.replace(path)
    return path


def sample_run(
    run: Path, count: int, out: Path, decode: Decode, seed: int = 0, checkpoint: str = "last",
    gray_images: torch.Tensor | None = None, draws: int = 4, stages: bool = False, notice=print,
) -> Path:
    """Draw ``count`` images from ``run`` into the grid ``out`` (with ``stages``, one row per image: every
    factor's draw, smaller ones enlarged); with ``gray_images`` (N, 3, H, W) of 0..255, colour their 4-bit
    gray instead (one row per image: gray | ``draws`` samples | truth). ``notice`` gets a line to show
    before a long draw."""
    from chromaproxy.network import load_network

    cfg, network = load_network(run, checkpoint)
    task = image_model_task(network, run)
    if task.model.samples_naively():
        side = cfg.data.image_size
        together = min(count, BATCH if gray_images is None else len(gray_images))
        notice(f"note: {run}'s network is a U-Net, drawn one full pass per pixel ({side * side:,} passes per "
               f"batch of {together}); at paper size that is minutes per image on a CPU")
    if gray_images is None:
        drawn = draw_stages(task, count, cfg.data.image_size, seed, decode)
        if not stages:
            return save_picture(tile(drawn[-1], columns=min(count, 8)), out, scale=2)
        size = cfg.data.image_size
        columns = [image.repeat_interleave(size // image.shape[-1], -1).repeat_interleave(size // image.shape[-1], -2)
                   for image in drawn]  # each stage enlarged to the full side by repetition
        return save_picture(tile(torch.stack(columns, 1).flatten(0, 1), columns=len(columns)), out, scale=2)
    columns = colour_gray_images(task, gray_images[:count].long(), draws, seed, decode)
    rows = torch.stack(columns, dim=1).flatten(0, 1)  # (N·(draws + 2), 3, H, W), one image's row after another
    return save_picture(tile(rows, columns=len(columns)), out, scale=2)
