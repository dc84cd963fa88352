"""IIC's paired views of a batch (Ji, Henriques, Vedaldi 2019, Sec. 4, CIFAR-10 setting).

Clustering learns what stays the same across transformations of one image, so the views decide what a
cluster means. For each image x the task makes

- the anchor: a random square crop of side ``crop`` resized to ``size`` (IIC's first transform; the
  paper crops 20 of CIFAR's 32 pixels and resizes back to 32; a smaller ``size`` makes a CPU run cheaper);
- ``views`` paired views x': each another random crop of the same side, resized, mirrored with p = 0.5
  and colour-jittered (brightness, contrast, saturation, hue; torchvision semantics, every image);

and, when images are assigned to clusters after training, the centre crop resized (IIC's test
transform), so the network sees the scale it was trained on. Grayscale and Sobel filtering are the run's
``model.input=sobel``, applied to every view on the way into the backbone.

Every crop of the batch is one ``grid_sample`` over per-image sampling grids, so the views are made on
the device without a Python loop over images; all randomness comes from the generator passed in.
"""

from __future__ import annotations

import torch

from chromaproxy.data.augment import color_jitter
from chromaproxy.data.resized_crop import crop_resize
from chromaproxy.errors import UserError


def check_crop(crop: int, height: int, width: int) -> None:
    if not 0 < crop <= min(height, width):
        raise UserError(f"iic.crop={crop} must be between 1 and the image side {min(height, width)}")


def random_corners(batch: int, crop: int, height: int, width: int, generator: torch.Generator, device) -> torch.Tensor:
    """(B, 2) top-left corners of ``crop``-sided squares, uniform over the positions inside the image."""
    y = torch.randint(0, height - crop + 1, (batch,), generator=generator, device=device)
    x = torch.randint(0, width - crop + 1, (batch,), generator=generator, device=device)
    return torch.stack([y, x], dim=1)


def centre_crop(rgb: torch.Tensor, crop: int, size: int | None = None) -> torch.Tensor:
    """The centre ``crop`` x ``crop`` square of every image, resized to ``size`` (default the image side)."""
    batch, _, height, width = rgb.shape
    corners = torch.tensor([(height - crop) / 2, (width - crop) / 2], device=rgb.device).expand(batch, 2)
    return crop_resize(rgb, corners, crop, size)


def paired_views(
    rgb: torch.Tensor, views: int, crop: int, jitter: tuple[float, float, float, float], generator: torch.Generator,
    size: int | None = None,
) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] → (B·(1 + views), 3, S, S) with S = ``size`` (default H = W): the B anchors
    first, then the views view-major (input ``B + v·B + b`` is view v of image b)."""
    batch, _, height, width = rgb.shape
    check_crop(crop, height, width)
    anchors = crop_resize(rgb, random_corners(batch, crop, height, width, generator, rgb.device), crop, size)
    repeated = rgb.repeat(views, 1, 1, 1)  # (V·B, 3, H, W), view-major
    paired = crop_resize(repeated, random_corners(views * batch, crop, height, width, generator, rgb.device), crop, size)
    mirrored = torch.rand(views * batch, generator=generator, device=rgb.device) < 0.5
    paired = torch.where(mirrored.view(-1, 1, 1, 1), paired.flip(-1), paired)
    if any(jitter):
        paired = color_jitter(paired, jitter, 1.0, generator)
    return torch.cat([anchors, paired.clamp(0, 1)])
