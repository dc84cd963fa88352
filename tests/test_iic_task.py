"""IIC's views and task: crops against a slice-and-resize reference, the heads' alternation and choice."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chromaproxy.cluster.iic import iic_loss
from chromaproxy.cluster.views import centre_crop, paired_views
from chromaproxy.data.resized_crop import crop_resize
from chromaproxy.config import load_config
from chromaproxy.data.types import ImageSet
from chromaproxy.network import Network
from chromaproxy.tasks.iic import HEADS

IMAGES = ImageSet(torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8), torch.arange(32) % 10, [str(i) for i in range(10)])


def test_crop_resize_equals_a_slice_then_bilinear_resize():
    rgb = torch.rand(3, 3, 32, 32)
    corners = torch.tensor([[0, 0], [5, 12], [12, 3]])
    out = crop_resize(rgb, corners, 20)
    for image, (y, x), got in zip(rgb, corners.tolist(), out):
        piece = image[None, :, y : y + 20, x : x + 20]
        expected = F.interpolate(piece, size=(32, 32), mode="bilinear", align_corners=False)[0]
        assert torch.allclose(got, expected, atol=1e-5)


def test_a_full_size_centre_crop_is_the_image_itself():
    rgb = torch.rand(2, 3, 16, 16)
    assert torch.allclose(centre_crop(rgb, 16), rgb, atol=1e-5)


def test_paired_views_are_anchors_then_views_and_depend_only_on_the_generator():
    rgb = torch.rand(4, 3, 32, 32)
    jitter = (0.4, 0.4, 0.4, 0.125)
    first = paired_views(rgb, 3, 20, jitter, torch.Generator().manual_seed(0))
    again = paired_views(rgb, 3, 20, jitter, torch.Generator().manual_seed(0))
    other = paired_views(rgb, 3, 20, jitter, torch.Generator().manual_seed(1))
    assert first.shape == (16, 3, 32, 32) and torch.equal(first, again) and not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1
    assert not torch.allclose(first[4:8], first[8:12])  # two views of the same images differ


def _iic(extra: list[str] = ()) -> Network:
    cfg = load_config("configs/iic-cifar10-quick.yaml", ["model.width=0.25", "model.blocks=3", "iic.sub_heads=2", *extra])
    torch.manual_seed(0)
    return Network.from_config(cfg, num_classes=10, images=IMAGES).train()


def _gradients_after_one_step(network: Network) -> dict[str, bool]:
    task = network.tasks["iic"]
    network.zero_grad(set_to_none=True)
    inputs, batch = task.make_batch(IMAGES.images[:8].float() / 255, IMAGES.labels[:8], torch.Generator().manual_seed(0))
    network.task_outputs("iic", inputs, batch)["loss"].backward()
    return {head: all(p.grad is not None for p in task.heads[head].parameters()) for head in HEADS}


def test_the_heads_train_on_alternate_steps_and_both_every_step_without_alternation():
    network = _iic(["iic.alternate=true"])
    assert _gradients_after_one_step(network) == {"overcluster": True, "clusters": False}
    assert _gradients_after_one_step(network) == {"overcluster": False, "clusters": True}
    assert _gradients_after_one_step(network) == {"overcluster": True, "clusters": False}
    both = _iic(["iic.alternate=false"])
    assert _gradients_after_one_step(both) == {"overcluster": True, "clusters": True}


def test_pairs_are_each_view_with_its_anchor_or_every_two_versions_of_an_image():
    batch, channels = 2, 4
    pooled = torch.arange(batch * 3 * channels, dtype=torch.float32).view(batch * 3, channels)  # anchors, view 1, view 2

    def version(v: int) -> torch.Tensor:
        return pooled[v * batch : (v + 1) * batch]

    expected = {
        "anchor": [(0, 1), (0, 2)],
        "all": [(0, 1), (0, 2), (1, 2)],
    }
    for pairs, versions in expected.items():
        task = _iic([f"iic.pairs={pairs}", "iic.views=2"]).tasks["iic"]
        first, second = task._pairs(pooled, batch)
        assert torch.equal(first, torch.cat([version(i) for i, _ in versions]))
        assert torch.equal(second, torch.cat([version(j) for _, j in versions]))


def test_every_pair_enters_one_joint_distribution():
    network = _iic(["iic.pairs=all", "iic.views=2", "iic.sub_heads=1"])
    task = network.tasks["iic"]
    inputs, batch = task.make_batch(IMAGES.images[:8].float() / 255, IMAGES.labels[:8], torch.Generator().manual_seed(0))
    features = network.backbone.forward_features(network.input(inputs), task.taps)
    loss = task(features, batch)["loss"]
    pooled = features[task.taps[0]].float().mean(dim=(2, 3))
    anchors, views, other = pooled.split(batch)
    first, second = torch.cat([anchors, anchors, views]), torch.cat([views, other, other])
    expected = sum(iic_loss(h[0](first).softmax(1), h[0](second).softmax(1), task.options.lam) for h in task.heads.values())
    assert torch.allclose(loss, expected, atol=1e-5)


def test_the_sub_head_with_the_lowest_running_loss_is_chosen_and_saved_with_the_weights():
    network = _iic()
    task = network.tasks["iic"]
    assert task.best_sub_head("clusters") == 0  # nothing measured yet
    task.clusters_losses.copy_(torch.tensor([-0.5, -1.5]))
    assert task.best_sub_head("clusters") == 1
    assert "tasks.iic.clusters_losses" in network.state_dict()
    pooled = torch.randn(6, task.heads["clusters"][0].in_features)
    expected = task.heads["clusters"][1](pooled).softmax(1)
    assert torch.allclose(task.probabilities(pooled, "clusters"), expected)


def test_views_can_be_resized_to_a_smaller_side():
    rgb = torch.rand(2, 3, 32, 32)
    views = paired_views(rgb, 2, 20, (0.0, 0.0, 0.0, 0.0), torch.Generator().manual_seed(0), size=16)
    assert views.shape == (6, 3, 16, 16)
    expected = F.interpolate(rgb[:, :, 6:26, 6:26], size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(centre_crop(rgb, 20, 16), expected, atol=1e-5)
