"""Rotation (RotNet) and flips (SESEMI) tasks: labels match the applied transformation, determinism,
option checks, and one optimisation step that lowers each loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from chromaproxy.errors import UserError
from chromaproxy.models import build_backbone
from chromaproxy.tasks.base import TaskContext
from chromaproxy.tasks.flips import FlipsOptions, FlipsTask
from chromaproxy.tasks.heads import cross_entropy_and_accuracy
from chromaproxy.tasks.rotation import RotationOptions, RotationTask


@pytest.fixture
def context() -> TaskContext:
    torch.manual_seed(0)
    return TaskContext(build_backbone("nin", in_channels=3, width=0.125, blocks=3), num_classes=0)


def smooth_images(batch: int, seed: int = 0) -> torch.Tensor:
    """Random smooth images (B, 3, 32, 32) in [0, 1]: 4x4 noise upsampled, so rotations are distinguishable."""
    noise = torch.rand(batch, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(noise, size=(32, 32), mode="bilinear", align_corners=False)


def asymmetric_images(batch: int) -> torch.Tensor:
    """Images (B, 3, 8, 8) with a distinct value at every pixel: no rotation or flip maps one onto itself."""
    ramp = torch.arange(batch * 3 * 64, dtype=torch.float32).reshape(batch, 3, 8, 8)  # (B, 3, 8, 8)
    return ramp / ramp.max()


def expected_flip(image: torch.Tensor, label: int) -> torch.Tensor:
    """SESEMI's six transformations, written out independently of the task."""
    if label < 4:
        return torch.rot90(image, label, dims=(-2, -1))
    return image.flip(-1) if label == 4 else image.flip(-2)


def test_rotation_labels_match_rot90(context):
    task = RotationTask(RotationOptions(), context)
    rgb = asymmetric_images(3)
    inputs, labels = task.make_batch(rgb, torch.zeros(3, dtype=torch.long), torch.Generator())
    assert inputs.shape == (12, 3, 8, 8)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # angle-major: input a * B + b
    for i, k in enumerate(labels.tolist()):
        assert torch.equal(inputs[i], torch.rot90(rgb[i % 3], k, dims=(-2, -1)))


def test_rotation_45_degrees(context):
    task = RotationTask(RotationOptions(angles=list(range(0, 360, 45))), context)
    rgb = smooth_images(2)
    inputs, labels = task.make_batch(rgb, torch.zeros(2, dtype=torch.long), torch.Generator())
    assert inputs.shape == (16, 3, 32, 32)
    assert labels.tolist() == [a for a in range(8) for _ in range(2)]
    assert torch.equal(inputs[:2], rgb)
    assert torch.equal(inputs[4:6], torch.rot90(rgb, 1, dims=(-2, -1)))
    assert not torch.allclose(inputs[2:4], rgb)


def test_rotation_rejects_bad_angles(context):
    with pytest.raises(UserError, match="empty"):
        RotationTask(RotationOptions(angles=[]), context)
    with pytest.raises(UserError, match="repeats"):
        RotationTask(RotationOptions(angles=[0, 90, 360]), context)


def test_rotation_needs_square_images_for_90(context):
    rgb = torch.rand(2, 3, 8, 12)
    with pytest.raises(UserError, match="square"):
        RotationTask(RotationOptions(), context).make_batch(rgb, torch.zeros(2), torch.Generator())
    half_turns = RotationTask(RotationOptions(angles=[0, 180]), context)
    inputs, _ = half_turns.make_batch(rgb, torch.zeros(2), torch.Generator())
    assert inputs.shape == (4, 3, 8, 12)


def test_flips_labels_match_transform(context):
    task = FlipsTask(FlipsOptions(), context)
    rgb = asymmetric_images(64)
    inputs, labels = task.make_batch(rgb, torch.zeros(64, dtype=torch.long), torch.Generator().manual_seed(0))
    assert inputs.shape == rgb.shape
    assert set(labels.tolist()) == set(range(6))
    for b, k in enumerate(labels.tolist()):
        assert torch.equal(inputs[b], expected_flip(rgb[b], k))


def undo(image: torch.Tensor, label: int, recolorized: torch.Tensor) -> torch.Tensor:
    """The original image back from a transformed input: the inverse of each of the 7 labels."""
    if label < 4:
        return torch.rot90(image, -label, dims=(-2, -1))
    if label == 6:
        assert torch.equal(image, recolorized)  # "recolorized" swaps the image for its twin
        return None
    return image.flip(-1) if label == 4 else image.flip(-2)


def test_each_of_the_seven_color_s4l_labels_is_undone_by_its_inverse(context):
    task = FlipsTask(FlipsOptions(recolorized=True), context)
    assert task.targets_from == "recolorized" and task.head[-1].out_features == 7
    rgb = asymmetric_images(96)
    twins = 1 - rgb
    inputs, labels = task.make_batch(rgb, twins, torch.Generator().manual_seed(1))
    assert set(labels.tolist()) == set(range(7))
    for b, k in enumerate(labels.tolist()):
        restored = undo(inputs[b], k, twins[b])
        assert restored is None or torch.equal(restored, rgb[b]), (b, k)
        for other in set(range(6)) - {k}:  # no other label's inverse gives the image back
            assert k == 6 or not torch.equal(undo(inputs[b], other, twins[b]), rgb[b])


def test_flips_same_seed_same_batch(context):
    task = FlipsTask(FlipsOptions(), context)
    rgb = asymmetric_images(16)
    first = task.make_batch(rgb, torch.zeros(16), torch.Generator().manual_seed(3))
    second = task.make_batch(rgb, torch.zeros(16), torch.Generator().manual_seed(3))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_flips_all_transforms(context):
    task = FlipsTask(FlipsOptions(all_transforms=True), context)
    rgb = asymmetric_images(2)
    inputs, labels = task.make_batch(rgb, torch.zeros(2), torch.Generator())
    assert inputs.shape == (12, 3, 8, 8)
    assert labels.tolist() == [t for t in range(6) for _ in range(2)]
    for i, k in enumerate(labels.tolist()):
        assert torch.equal(inputs[i], expected_flip(rgb[i % 2], k))


def test_cross_entropy_and_accuracy_matches_naive():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 1])
    naive = -(logits.log_softmax(1)[0, 0] + logits.log_softmax(1)[1, 1]) / 2
    out = cross_entropy_and_accuracy(logits, labels)
    assert torch.allclose(out["loss"], naive)
    assert out["acc"].item() == 0.5 and not out["acc"].requires_grad


@pytest.mark.parametrize(
    ("task_class", "options"),
    [(RotationTask, RotationOptions()), (FlipsTask, FlipsOptions()), (FlipsTask, FlipsOptions(all_transforms=True))],
)
def test_optimisation_lowers_loss(context, task_class, options):
    task = task_class(options, context)
    backbone = context.backbone
    inputs, targets = task.make_batch(smooth_images(16), torch.zeros(16), torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam([*backbone.parameters(), *task.parameters()], lr=1e-3)
    losses = []
    for _ in range(6):
        features = backbone.forward_features((inputs - 0.5) / 0.25, task.taps)
        loss = task(features, targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
