"""The transformations AET regresses (Zhang, Qi, Wang, Luo 2019, Sec. 4.1.1), sampled in batches.

Transformations are expressed in normalized coordinates, x and y in [-1, 1] from the first to the last
pixel centre (``align_corners=True``), so the targets do not depend on the image size:

- projective (AET-project, Sec. 4.1.1): the four image corners are scaled by U(0.8, 1.2) around the
  centre, rotated by a random multiple of 90°, and each shifted by an integer in [-4, 4] pixels at
  CIFAR scale (times image_size / 32 for other sizes). The target is the homography mapping the original
  corners onto the new ones, scaled so that H[2, 2] = 1: its 8 other entries, row-major.
- affine (AET-affine, Sec. 4.1.1): rotation U(-180°, 180°), translation U(-0.2, 0.2) of the width and
  height, scale U(0.7, 1.3) and shear U(-30°, 30°), composed about the centre as T · R · Sh · S. The
  target is the 2x3 matrix, row-major (6 entries). The matrix rather than (angle, shear, ...) because the
  angle wraps around at ±180°, which a squared error cannot see.

Matrices map source coordinates to destination coordinates: ``warp`` samples the source at M⁻¹ · x.
"""

from __future__ import annotations

import math
from typing import Literal

import kornia
import torch

Kind = Literal["projective", "affine"]
PARAMS: dict[str, int] = {"projective": 8, "affine": 6}
CORNERS = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))  # normalized, clockwise from top-left
SHIFT_PX = 4  # corner shift bound in pixels at CIFAR's 32x32 (REFERENCE: AET projective)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else size


def _uniform(batch: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(batch, generator=generator, device=device)


def corner_homography(scale: torch.Tensor, turns: torch.Tensor, shift_px: torch.Tensor,
                      size: int | tuple[int, int]) -> torch.Tensor:
    """Normalized homographies (B, 3, 3), H[2, 2] = 1, mapping the image corners onto corners scaled by
    ``scale`` (B,) about the centre, rotated by ``turns`` (B,) quarter turns, then shifted by ``shift_px``
    (B, 4, 2) pixels (x, y) in an image of ``size`` (H, W)."""
    height, width = _pair(size)
    corners = torch.tensor(CORNERS, device=scale.device).expand(len(scale), 4, 2)  # (B, 4, 2)
    angle = turns.float() * (math.pi / 2)
    cos, sin = torch.cos(angle).round(), torch.sin(angle).round()  # exact quarter turns
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    pixel = torch.tensor([2 / (width - 1), 2 / (height - 1)], device=scale.device)  # normalized units per pixel
    moved = scale[:, None, None] * corners @ rotation.transpose(1, 2) + shift_px * pixel  # (B, 4, 2)
    homography = kornia.geometry.transform.get_perspective_transform(corners, moved)  # (B, 3, 3)
    return homography / homography[:, 2:, 2:]


def sample_projective(batch: int, size: int | tuple[int, int], generator: torch.Generator,
                      device) -> tuple[torch.Tensor, torch.Tensor]:
    """One random AET projective transformation per image: normalized H (B, 3, 3) and params (B, 8)."""
    height, width = _pair(size)
    scale = _uniform(batch, 0.8, 1.2, generator, device)
    turns = torch.randint(0, 4, (batch,), generator=generator, device=device)
    steps = torch.randint(-SHIFT_PX, SHIFT_PX + 1, (batch, 4, 2), generator=generator, device=device)
    shift_px = steps * torch.tensor([width / 32, height / 32], device=device)  # (B, 4, 2), CIFAR-scaled
    homography = corner_homography(scale, turns, shift_px, size)
    return homography, homography.flatten(1)[:, :8]  # (B, 8)


def affine_matrix(angle: torch.Tensor, translation: torch.Tensor, scale: torch.Tensor,
                  shear: torch.Tensor) -> torch.Tensor:
    """Normalized affine matrices (B, 2, 3) = T · R(angle) · Sh(shear) · S(scale) about the centre.

    angle, shear (B,) in radians (shear along x: x += tan(shear) · y); translation (B, 2) in normalized
    units (1 = half the image); scale (B,)."""
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    shearing = torch.eye(2, device=angle.device).repeat(len(angle), 1, 1)  # (B, 2, 2)
    shearing[:, 0, 1] = tan
    linear = scale[:, None, None] * rotation @ shearing  # (B, 2, 2)
    return torch.cat([linear, translation[:, :, None]], dim=2)  # (B, 2, 3)


def sample_affine(batch: int, size: int | tuple[int, int], generator: torch.Generator,
                  device) -> tuple[torch.Tensor, torch.Tensor]:
    """One random AET affine transformation per image: normalized M (B, 2, 3) and params (B, 6)."""
    height, width = _pair(size)
    angle = _uniform(batch, -math.pi, math.pi, generator, device)
    fraction = _uniform(2 * batch, -0.2, 0.2, generator, device).view(batch, 2)  # of (width, height)
    translation = fraction * torch.tensor([2 * width / (width - 1), 2 * height / (height - 1)], device=device)
    scale = _uniform(batch, 0.7, 1.3, generator, device)
    shear = _uniform(batch, -math.pi / 6, math.pi / 6, generator, device)
    matrix = affine_matrix(angle, translation, scale, shear)
    return matrix, matrix.flatten(1)  # (B, 6)


def params_to_matrix(params: torch.Tensor, kind: Kind) -> torch.Tensor:
    """Inverse of the parameterization: params (B, 8) → H (B, 3, 3), or params (B, 6) → M (B, 2, 3)."""
    if kind == "affine":
        return params.view(-1, 2, 3)
    ones = torch.ones_like(params[:, :1])
    return torch.cat([params, ones], dim=1).view(-1, 3, 3)


def _normalize(size: tuple[int, int], device) -> torch.Tensor:
    """The (3, 3) matrix taking pixel coordinates (x, y, 1) to normalized ones in [-1, 1]."""
    height, width = size
    return torch.tensor([[2 / (width - 1), 0.0, -1.0], [0.0, 2 / (height - 1), -1.0], [0.0, 0.0, 1.0]],
                        device=device)


def warp(rgb: torch.Tensor, matrices: torch.Tensor, kind: Kind) -> torch.Tensor:
    """Images (B, C, H, W) warped by normalized matrices ((B, 3, 3) projective, (B, 2, 3) affine),
    bilinear with zero padding, same size."""
    size = tuple(rgb.shape[-2:])
    normalize = _normalize(size, rgb.device)
    if kind == "affine":
        bottom = normalize[2:].expand(len(matrices), 1, 3)
        matrices = torch.cat([matrices, bottom], dim=1)  # (B, 3, 3)
    pixel = torch.linalg.inv(normalize) @ matrices.to(rgb.dtype) @ normalize  # (B, 3, 3), pixel coordinates
    if kind == "affine":
        return kornia.geometry.transform.warp_affine(rgb, pixel[:, :2], size, mode="bilinear",
                                                     padding_mode="zeros", align_corners=True)
    return kornia.geometry.transform.warp_perspective(rgb, pixel, size, mode="bilinear",
                                                      padding_mode="zeros", align_corners=True)
