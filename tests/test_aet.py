"""AET (Zhang et al. 2019): transformation sampling ranges, the parameter round trip, determinism, and one
optimisation step that lowers the regression loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from chromaproxy.models import build_backbone
from chromaproxy.tasks.aet import AetOptions, AetTask
from chromaproxy.tasks.aet_transforms import corner_homography, params_to_matrix, sample_affine, sample_projective, warp
from chromaproxy.tasks.base import TaskContext

SIZE = 32
CORNERS_PX = torch.tensor([[0.0, 0.0], [31.0, 0.0], [31.0, 31.0], [0.0, 31.0]])  # clockwise from top-left


def smooth_images(batch: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images (B, 3, 32, 32) in [0, 1]: 4x4 noise upsampled bilinearly."""
    noise = torch.rand(batch, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(noise, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def make_task(transform: str = "projective", hidden: int = 0):
    backbone = build_backbone("nin", in_channels=3, width=0.125, blocks=3)
    task = AetTask(AetOptions(transform=transform, hidden=hidden), TaskContext(backbone, num_classes=0))
    return backbone, task


def to_pixels(points: torch.Tensor) -> torch.Tensor:
    return (points + 1) * (SIZE - 1) / 2


def apply_homography(homography: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Points (B, 4, 2) mapped by homographies (B, 3, 3)."""
    homogeneous = F.pad(points, (0, 1), value=1.0) @ homography.transpose(1, 2)  # (B, 4, 3)
    return homogeneous[..., :2] / homogeneous[..., 2:]


def quarter_turn(turns: int) -> torch.Tensor:
    """The (2, 2) rotation by ``turns`` quarter turns, [[cos, -sin], [sin, cos]] as in corner_homography."""
    cos, sin = round(math.cos(turns * math.pi / 2)), round(math.sin(turns * math.pi / 2))
    return torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float32)


def fits_scale_and_shift(moved: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) whether some scale s in [0.8, 1.2] puts every coordinate of ``moved`` (B, 4, 2) within 4 px of
    s · ``target`` (B, 4, 2): the intersection of the per-coordinate intervals of s is not empty."""
    bounds = torch.stack([(moved - 4) / target, (moved + 4) / target])  # (2, B, 4, 2); |target| = 15.5
    low = bounds.amin(0).flatten(1).amax(1).clamp(min=0.8)
    high = bounds.amax(0).flatten(1).amin(1).clamp(max=1.2)
    return low <= high + 1e-4


@pytest.mark.parametrize("transform", ["projective", "affine"])
def test_params_reproduce_the_warped_half(transform):
    _, task = make_task(transform)
    rgb = smooth_images(4)
    inputs, params = task.make_batch(rgb, torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(1))
    assert inputs.shape == (8, 3, SIZE, SIZE)
    assert params.shape == (4, 8 if transform == "projective" else 6)
    assert torch.equal(inputs[:4], rgb)
    rewarped = warp(rgb, params_to_matrix(params, transform), transform)
    torch.testing.assert_close(rewarped, inputs[4:], atol=1e-5, rtol=0)


def test_projective_corners_follow_the_sampling_ranges():
    homography, params = sample_projective(256, SIZE, torch.Generator().manual_seed(0), "cpu")
    torch.testing.assert_close(homography.flatten(1)[:, :8], params)
    corners = (CORNERS_PX - 15.5).expand(256, 4, 2)  # (B, 4, 2), pixels from the centre
    moved = to_pixels(apply_homography(homography, corners / 15.5)) - 15.5  # (B, 4, 2)
    fits = torch.stack([fits_scale_and_shift(moved, corners @ quarter_turn(k).T) for k in range(4)])  # (4, B)
    assert fits.any(0).all()
    assert fits.any(1).all()  # every quarter turn occurs


def test_projective_identity():
    homography = corner_homography(torch.ones(2), torch.zeros(2, dtype=torch.long), torch.zeros(2, 4, 2), SIZE)
    torch.testing.assert_close(homography, torch.eye(3).expand(2, 3, 3), atol=1e-6, rtol=0)


def test_projective_quarter_turn_is_rot90():
    rgb = smooth_images(1)
    turn = corner_homography(torch.ones(1), torch.ones(1, dtype=torch.long), torch.zeros(1, 4, 2), SIZE)
    torch.testing.assert_close(warp(rgb, turn, "projective"), torch.rot90(rgb, -1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_affine_ranges():
    matrix, params = sample_affine(512, SIZE, torch.Generator().manual_seed(0), "cpu")
    assert params.shape == (512, 6)
    torch.testing.assert_close(matrix.flatten(1), params)
    linear, translation = matrix[:, :, :2], matrix[:, :, 2]
    scale = torch.linalg.det(linear).sqrt()  # det R = det Sh = 1
    angle = torch.atan2(linear[:, 1, 0], linear[:, 0, 0])
    cos, sin = torch.cos(angle), torch.sin(angle)
    unrotated = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2) @ linear
    shear = torch.atan(unrotated[:, 0, 1] / scale)
    fraction = translation * (SIZE - 1) / (2 * SIZE)  # of the image size
    eps = 1e-4
    assert scale.min() >= 0.7 - eps and scale.max() <= 1.3 + eps
    assert shear.abs().max() <= math.pi / 6 + eps
    assert fraction.abs().max() <= 0.2 + eps
    assert angle.min() < -3 and angle.max() > 3  # the whole circle is covered
    torch.testing.assert_close(unrotated[:, 1, 0], torch.zeros(512), atol=1e-5, rtol=0)


@pytest.mark.parametrize("transform", ["projective", "affine"])
def test_same_seed_same_batch(transform):
    _, task = make_task(transform)
    rgb = smooth_images(4)
    labels = torch.zeros(4, dtype=torch.long)
    first = task.make_batch(rgb, labels, torch.Generator().manual_seed(7))
    torch.manual_seed(123)  # the global RNG must not matter
    second = task.make_batch(rgb, labels, torch.Generator().manual_seed(7))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    third = task.make_batch(rgb, labels, torch.Generator().manual_seed(8))
    assert not torch.equal(first[1], third[1])


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("transform,hidden", [("projective", 0), ("affine", 16)])
def test_optimisation_step_lowers_the_loss(transform, hidden):
    torch.manual_seed(0)
    backbone, task = make_task(transform, hidden)
    assert task.taps == [backbone.feature_info[-1].name]
    inputs, targets = task.make_batch(smooth_images(8), torch.zeros(8, dtype=torch.long),
                                      torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam([*backbone.parameters(), *task.parameters()], lr=1e-3)
    losses = []
    for _ in range(6):
        out = task(backbone.forward_features((inputs - 0.5) / 0.25, task.taps), targets)
        assert set(out) == {"loss", "param_mse"}
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
    assert losses[-1] < losses[0]
