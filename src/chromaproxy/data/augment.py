"""Batched augmentation on the device: whole-batch tensor ops, no per-image Python loop.

All randomness comes from the generator passed in (never the global RNG), so the trainer can save and
restore its state for exact resume: the same generator state gives the same output. The steps, in order:

1. random crop after padding and horizontal flip, on uint8, as one ``torch.gather`` for the batch
   (4x faster than advanced indexing on a CPU for 512 CIFAR images). The padding is zeros (RotNet's
   CIFAR recipe) or a reflection of the image: a colour target read on zero padding would teach the
   network to predict black borders (about 13 % of colorization's sampled points landed there);
2. a random resized square crop (``crop_scale``, off at (1, 1)), on floats, as one ``grid_sample``
   (``chromaproxy.data.resized_crop``);
3. colour jitter on a ``color_jitter_p`` share of the images, torchvision semantics (factors
   ~ U(max(0, 1-s), 1+s), hue shift ~ U(-h, h) of a turn) in the FIXED order brightness, contrast,
   saturation, hue (torchvision draws a random order per call; a fixed one keeps the batch vectorised);
4. grayscale (ITU-R 601 luma, copied to the 3 channels) on a ``grayscale_p`` share of the images.

Steps that are switched off cost nothing: no gather without crop and flip, no HSV round trip without hue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import kornia
import torch
import torch.nn.functional as F

from chromaproxy.data.resized_crop import random_resized_crop
from chromaproxy.errors import UserError


@dataclass(frozen=True)
class AugmentSpec:
    crop_padding: int = 4  # random crop back to the input size after padding (0 = off)
    padding_mode: Literal["zeros", "reflect"] = "zeros"  # what the crop's padding holds
    hflip: bool = True  # horizontal flip with p = 0.5
    crop_scale: tuple[float, float] = (1.0, 1.0)  # random resized square crop: share of the area, U(low, high)
    color_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # brightness, contrast, saturation, hue
    color_jitter_p: float = 0.8  # probability that an image is jittered
    grayscale_p: float = 0.0  # probability that an image becomes gray

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise UserError(f"augment.crop_padding={self.crop_padding} must be >= 0 (0 turns the crop off)")
        if len(self.color_jitter) != 4 or min(self.color_jitter) < 0 or self.color_jitter[3] > 0.5:
            raise UserError(
                f"augment.color_jitter={list(self.color_jitter)} needs 4 values >= 0 "
                "[brightness, contrast, saturation, hue] with hue <= 0.5"
            )
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise UserError(
                f"augment.crop_scale={list(self.crop_scale)} needs 2 area shares 0 < low <= high <= 1 "
                "(e.g. [0.3, 1.0]; [1.0, 1.0] turns the resized crop off)"
            )
        for key in ("color_jitter_p", "grayscale_p"):
            if not 0 <= getattr(self, key) <= 1:
                raise UserError(f"augment.{key}={getattr(self, key)} is a probability: use a value in [0, 1]")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float32 in [0, 1] (what evaluation uses: no augmentation)."""
    return images.float().div_(255.0)


def augment(images: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """uint8 (B, 3, H, W) → augmented float32 (B, 3, H, W) in [0, 1] on the same device."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"augment expects uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    if spec.crop_padding or spec.hflip:
        offsets, flips = sample_crop_and_flip(images, spec, generator)
        images = crop_and_flip(images, spec.crop_padding, offsets, flips, reflect=spec.padding_mode == "reflect")
    rgb = to_float(images)
    if spec.crop_scale[0] < 1:
        rgb = random_resized_crop(rgb, spec.crop_scale, generator).clamp_(0, 1)
    if any(spec.color_jitter) and spec.color_jitter_p > 0:
        rgb = color_jitter(rgb, spec.color_jitter, spec.color_jitter_p, generator)
    if spec.grayscale_p > 0:
        rgb = random_grayscale(rgb, spec.grayscale_p, generator)
    return rgb


def sample_crop_and_flip(
    images: torch.Tensor, spec: AugmentSpec, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop offsets (B, 2) = (dy, dx) in [0, 2p] and flip flags (B,), drawn in that order."""
    batch = images.shape[0]
    offsets = torch.randint(0, 2 * spec.crop_padding + 1, (batch, 2), generator=generator, device=images.device)
    flips = _coin(batch, 0.5 if spec.hflip else 0.0, generator, images.device)
    return offsets, flips


def crop_and_flip(
    images: torch.Tensor, padding: int, offsets: torch.Tensor, flips: torch.Tensor, reflect: bool = False
) -> torch.Tensor:
    """Crop each padded image at ``offsets`` (B, 2) = (dy, dx) and mirror it where ``flips`` (B,).

    Same as, per image, ``F.pad(image, (p,) * 4, mode)[:, dy:dy+H, dx:dx+W]`` then a flip of the width
    axis, done as one gather over the flattened batch. Reflection needs no padded copy: the crop's
    coordinates are reflected back into the image (p < H and p < W).
    """
    batch, channels, height, width = images.shape
    rows = offsets[:, :1] + torch.arange(height, device=images.device)  # (B, H) in the padded frame
    columns = torch.arange(width, device=images.device).expand(batch, width)  # (B, W)
    columns = torch.where(flips[:, None], columns.flip(1), columns) + offsets[:, 1:]
    if reflect:
        if padding >= min(height, width):
            raise UserError(f"augment.crop_padding={padding} must be below the image side {min(height, width)} for reflection")
        source, row_stride = images.flatten(2), width  # (B, 3, H * W)
        rows, columns = _reflect(rows - padding, height), _reflect(columns - padding, width)
    else:
        source, row_stride = F.pad(images, (padding,) * 4).flatten(2), width + 2 * padding  # (B, 3, (H+2p) * (W+2p))
    index = rows[:, :, None] * row_stride + columns[:, None, :]  # (B, H, W)
    index = index.view(batch, 1, height * width).expand(batch, channels, height * width)  # (B, 3, H * W)
    return source.gather(2, index).view(batch, channels, height, width)


def _reflect(coordinates: torch.Tensor, size: int) -> torch.Tensor:
    """Coordinates in [-p, size + p) mirrored into [0, size) without repeating the edge (numpy 'reflect')."""
    coordinates = coordinates.abs()
    return torch.where(coordinates >= size, 2 * (size - 1) - coordinates, coordinates)


def color_jitter(
    rgb: torch.Tensor, strengths: tuple[float, float, float, float], p: float, generator: torch.Generator
) -> torch.Tensor:
    """Jitter a ``p`` share of the images (B, 3, H, W) in [0, 1]; the others come back unchanged."""
    factors, picked = sample_jitter(rgb.shape[0], strengths, p, generator, rgb.device)
    brightness, contrast, saturation, hue = factors.T.reshape(4, -1, 1, 1, 1)  # each (B, 1, 1, 1)
    jittered = rgb
    if strengths[0]:
        jittered = adjust_brightness(jittered, brightness)
    if strengths[1]:
        jittered = adjust_contrast(jittered, contrast)
    if strengths[2]:
        jittered = adjust_saturation(jittered, saturation)
    if strengths[3]:
        jittered = adjust_hue(jittered, hue.flatten())
    return torch.where(picked.view(-1, 1, 1, 1), jittered, rgb)


def sample_jitter(
    batch: int, strengths: tuple[float, float, float, float], p: float, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (brightness, contrast, saturation factor, hue shift) as (B, 4), and which images (B,)
    are jittered. Factors ~ U(max(0, 1-s), 1+s) and the shift ~ U(-h, h), as torchvision's ColorJitter."""
    s = torch.tensor(strengths, dtype=torch.float32, device=device)
    low = torch.cat([(1 - s[:3]).clamp(min=0), -s[3:]])
    high = torch.cat([1 + s[:3], s[3:]])
    factors = low + (high - low) * torch.rand(batch, 4, generator=generator, device=device)  # (B, 4)
    return factors, _coin(batch, p, generator, device)


def adjust_brightness(rgb: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with black: ``factor`` (B, 1, 1, 1)."""
    return (rgb * factor).clamp(0, 1)


def adjust_contrast(rgb: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean gray level (torchvision: the mean of the luma over the image)."""
    mean = kornia.color.rgb_to_grayscale(rgb).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return ((rgb - mean) * factor + mean).clamp(0, 1)


def adjust_saturation(rgb: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's own gray version, pixel by pixel."""
    gray = kornia.color.rgb_to_grayscale(rgb)  # (B, 1, H, W)
    return ((rgb - gray) * factor + gray).clamp(0, 1)


def adjust_hue(rgb: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each image's hue by ``shift`` (B,) turns; HSV saturation and value stay as they were."""
    hsv = kornia.color.rgb_to_hsv(rgb)  # (B, 3, H, W), hue in radians [0, 2π)
    turn = 2 * torch.pi
    hue = torch.remainder(hsv[:, :1] + shift.view(-1, 1, 1, 1) * turn, turn)
    return kornia.color.hsv_to_rgb(torch.cat([hue, hsv[:, 1:]], dim=1)).clamp(0, 1)


def random_grayscale(rgb: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Replace a ``p`` share of the images by their luma, repeated on the 3 channels."""
    gray = _coin(rgb.shape[0], p, generator, rgb.device).view(-1, 1, 1, 1)
    return torch.where(gray, kornia.color.rgb_to_grayscale(rgb).expand_as(rgb), rgb)


def _coin(batch: int, p: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(B,) booleans, each True with probability ``p``."""
    return torch.rand(batch, generator=generator, device=device) < p
