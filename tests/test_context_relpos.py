"""Context encoder (Pathak 2016) and relative patch position (Doersch 2015): geometry of holes and patches,
the weighted L2 against a naive loop, determinism, and one optimisation step that lowers each loss."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from chromaproxy.errors import UserError
from chromaproxy.models import build_backbone
from chromaproxy.tasks.base import TaskContext
from chromaproxy.tasks.context import FILL, ContextOptions, ContextTask, center_mask, reconstruction_loss
from chromaproxy.tasks.patches import cut_patches, patch_boxes
from chromaproxy.tasks.relpos import NEIGHBOURS, RelposOptions, RelposTask, jittered_corners, patch_side


@pytest.fixture
def context() -> TaskContext:
    torch.manual_seed(0)
    return TaskContext(build_backbone("nin", in_channels=3, width=0.125, blocks=3), num_classes=0)


def smooth_images(batch: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random smooth images (B, 3, size, size) in [0, 1]: 4x4 noise upsampled bilinearly."""
    noise = torch.rand(batch, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)


def no_labels(batch: int) -> torch.Tensor:
    return torch.zeros(batch, dtype=torch.long)


def as_tensors(targets: torch.Tensor | tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    return list(targets) if isinstance(targets, tuple) else [targets]


# ------------------------------------------------------------------ context encoder
@pytest.mark.parametrize("size, hole, top", [(32, 16, 8), (32, 8, 12), (40, 8, 16), (40, 16, 12)])
def test_center_mask_is_the_centred_square(size, hole, top):
    mask = center_mask(size, size, hole)
    assert mask.shape == (size, size) and mask.sum() == hole * hole
    assert mask[top : top + hole, top : top + hole].all()


@pytest.mark.parametrize("size, hole, overlap", [(32, 16, 2), (40, 8, 3)])
def test_context_batch_geometry(context, size, hole, overlap):
    task = ContextTask(ContextOptions(hole=hole, overlap=overlap), context)
    rgb = smooth_images(2, size)
    inputs, targets = task.make_batch(rgb, no_labels(2), torch.Generator())
    mask = center_mask(size, size, hole)
    assert inputs.shape == rgb.shape
    assert torch.equal(inputs[..., ~mask], rgb[..., ~mask])
    assert (inputs[..., mask] == FILL).all()
    top = (size - hole) // 2 - overlap
    side = hole + 2 * overlap
    assert torch.equal(targets.region, rgb[..., top : top + side, top : top + side])
    inner = targets.weights[overlap : overlap + hole, overlap : overlap + hole]
    assert (inner == 1).all()
    assert targets.weights.sum() == hole * hole + 10.0 * (side * side - hole * hole)


def test_reconstruction_loss_matches_naive_loop():
    gen = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 6, 6, generator=gen), torch.rand(2, 3, 6, 6, generator=gen)
    weights = torch.rand(6, 6, generator=gen)
    total = 0.0
    for b, c, y, x in itertools.product(range(2), range(3), range(6), range(6)):
        total += weights[y, x].item() * (pred[b, c, y, x].item() - target[b, c, y, x].item()) ** 2
    assert reconstruction_loss(pred, target, weights).item() == pytest.approx(total / (2 * 3 * 6 * 6), rel=1e-5)


def test_context_rejects_a_hole_that_does_not_fit(context):
    task = ContextTask(ContextOptions(hole=30, overlap=2), context)
    with pytest.raises(UserError, match="context.hole"):
        task.make_batch(smooth_images(1), no_labels(1), torch.Generator())


# ------------------------------------------------------------------ relative patch position
def box_of(corner: torch.Tensor, patch: int) -> tuple[int, int, int, int]:
    top, left = corner.tolist()
    return top, left, top + patch, left + patch


def disjoint(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_patch_side_derived_from_the_image():
    assert patch_side(32, 32, RelposOptions()) == 8
    assert patch_side(32, 32, RelposOptions(patch=6)) == 6


def test_patches_stay_disjoint_and_inside_under_max_jitter():
    options = RelposOptions()
    patch = patch_side(32, 32, options)
    boxes = patch_boxes(32, 32, options.grid, patch, options.gap)
    assert boxes.shape == (9, 4)
    shifts = list(itertools.product([-options.jitter, 0, options.jitter], repeat=2))
    for i, j in itertools.combinations(range(9), 2):
        for (dy1, dx1), (dy2, dx2) in itertools.product(shifts, shifts):
            a = boxes[i] + torch.tensor([dy1, dx1, dy1, dx1])
            b = boxes[j] + torch.tensor([dy2, dx2, dy2, dx2])
            assert disjoint(tuple(a.tolist()), tuple(b.tolist()))
            assert a.min() >= 0 and b.min() >= 0 and a.max() <= 32 and b.max() <= 32


def test_labels_match_the_neighbour_offset():
    """Label k puts the neighbour one cell away in direction NEIGHBOURS[k], up to the jitter of both patches."""
    options = RelposOptions()
    boxes = patch_boxes(32, 32, options.grid, 8, options.gap)
    labels = torch.arange(8).repeat(50)  # (400,)
    corners = jittered_corners(boxes, labels, options.grid, options.jitter, torch.Generator().manual_seed(0))
    assert ((corners[:, 0] - boxes[4, :2]).abs() <= options.jitter).all()
    offset = corners[:, 1] - corners[:, 0]  # (400, 2) neighbour minus centre
    expected = torch.tensor(NEIGHBOURS)[labels] * (8 + options.gap)  # (400, 2)
    assert ((offset - expected).abs() <= 2 * options.jitter).all()
    assert NEIGHBOURS == [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    for i, label in enumerate(labels.tolist()):
        assert tuple(torch.round(offset[i] / (8 + options.gap)).long().tolist()) == NEIGHBOURS[label]
        assert disjoint(box_of(corners[i, 0], 8), box_of(corners[i, 1], 8))


def test_relpos_inputs_are_exact_crops_without_color_drop(context):
    """Each patch equals the crop at exactly one jitter of the cell its label names (smooth, distinct pixels)."""
    task = RelposTask(RelposOptions(color_drop=False), context)
    rgb = smooth_images(16, seed=3)
    inputs, labels = task.make_batch(rgb, no_labels(16), torch.Generator().manual_seed(5))
    assert inputs.shape == (32, 3, 8, 8) and labels.shape == (16,)
    boxes = patch_boxes(32, 32, 3, 8, 2)
    for b, label in enumerate(labels.tolist()):
        row, col = NEIGHBOURS[label]
        for patch, cell in [(inputs[b], 4), (inputs[16 + b], 4 + 3 * row + col)]:
            top, left = boxes[cell, :2].tolist()
            matches = [
                (dy, dx)
                for dy, dx in itertools.product(range(-1, 2), repeat=2)
                if torch.equal(patch, rgb[b, :, top + dy : top + dy + 8, left + dx : left + dx + 8])
            ]
            assert len(matches) == 1


def test_cut_patches_matches_slicing():
    images = torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    corners = torch.tensor([[0, 0], [4, 2], [7, 8]])
    crops = cut_patches(images, corners, 4)
    for b, (top, left) in enumerate(corners.tolist()):
        assert torch.equal(crops[b], images[b, :, top : top + 4, left : left + 4])


def test_color_drop_keeps_one_channel_and_weak_noise(context):
    task = RelposTask(RelposOptions(), context)
    rgb = smooth_images(8, seed=4)
    dropped, labels = task.make_batch(rgb, no_labels(8), torch.Generator().manual_seed(6))
    plain_task = RelposTask(RelposOptions(color_drop=False), context)
    plain, plain_labels = plain_task.make_batch(rgb, no_labels(8), torch.Generator().manual_seed(6))
    assert torch.equal(labels, plain_labels)
    for patch, original in zip(dropped, plain):
        kept = [c for c in range(3) if torch.equal(patch[c], original[c])]
        assert len(kept) == 1
        noise = torch.stack([patch[c] for c in range(3) if c != kept[0]])
        assert (noise - 0.5).abs().max() < 0.1 * original[kept[0]].std() + 1e-6


def test_relpos_rejects_overlapping_jitter(context):
    task = RelposTask(RelposOptions(gap=1, jitter=1), context)
    with pytest.raises(UserError, match="relpos.gap"):
        task.make_batch(smooth_images(1), no_labels(1), torch.Generator())


# ------------------------------------------------------------------ both tasks
@pytest.mark.parametrize("task_class, options", [(ContextTask, ContextOptions()), (RelposTask, RelposOptions())])
def test_same_seed_same_batch(context, task_class, options):
    task = task_class(options, context)
    rgb = smooth_images(4)
    first = task.make_batch(rgb, no_labels(4), torch.Generator().manual_seed(7))
    second = task.make_batch(rgb, no_labels(4), torch.Generator().manual_seed(7))
    assert torch.equal(first[0], second[0])
    for a, b in zip(as_tensors(first[1]), as_tensors(second[1]), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("task_class, options", [(ContextTask, ContextOptions()), (RelposTask, RelposOptions())])
def test_optimisation_lowers_the_loss(context, task_class, options):
    task = task_class(options, context)
    backbone = context.backbone
    inputs, targets = task.make_batch(smooth_images(8), no_labels(8), torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam([*backbone.parameters(), *task.parameters()], lr=1e-3)

    def loss() -> torch.Tensor:
        return task(backbone.forward_features((inputs - 0.5) / 0.25, task.taps), targets)["loss"]

    before = loss()
    for _ in range(5):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < before.item()
