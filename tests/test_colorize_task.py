"""The colorization task end to end on tiny real batches: config rules, targets, prior, learning."""

from __future__ import annotations

import pytest
import torch

from chromaproxy.config import load_config
from chromaproxy.data.augment import to_float
from chromaproxy.data.sources import load_source
from chromaproxy.errors import UserError
from chromaproxy.network import Network
from chromaproxy.tasks.colorize_prior import PRIOR_FILE
from conftest import REPO

PRESET = REPO / "configs/colorization-cifar10.yaml"
SMALL = ["model.width=0.25", "model.blocks=3", "colorization.points=16", "colorization.hidden=64",
         "colorization.prior_images=200"]


def test_colorization_requires_lightness_input():
    with pytest.raises(UserError, match="task colorization cannot train on model.input=rgb; set model.input=L"):
        load_config(PRESET, ["model.input=rgb"])


@pytest.fixture(scope="module")
def images():
    from conftest import data_root

    if not (data_root() / "cifar10" / "data_batch_1").is_file():
        pytest.skip("CIFAR-10 not available")
    return load_source("cifar10", root=str(data_root())).train.subset(torch.arange(256))


def _network(loss, images, run):
    cfg = load_config(PRESET, SMALL + [f"colorization.loss={loss}"])
    torch.manual_seed(0)
    return Network.from_config(cfg, 10, images=images, run=run)


@pytest.mark.parametrize("loss", ["regression", "classification", "histogram"])
def test_a_few_steps_lower_each_loss_on_a_fixed_batch(loss, images, tmp_path):
    network = _network(loss, images, tmp_path)
    task = network.tasks["colorization"]
    rgb = to_float(images.images[:32])
    inputs, targets = task.make_batch(rgb, images.labels[:32], torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        out = network.task_outputs("colorization", inputs, targets)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
    assert losses[-1] < losses[0], losses


def test_classification_targets_and_the_saved_prior(images, tmp_path):
    network = _network("classification", images, tmp_path)
    task = network.tasks["colorization"]
    assert task.target.centers.shape == (313, 2)
    _, targets = task.make_batch(to_float(images.images[:4]), images.labels[:4], torch.Generator().manual_seed(0))
    assert targets["soft"].shape == (4, 16, 313)
    assert torch.allclose(targets["soft"].sum(-1), torch.ones(4, 16), atol=1e-5)
    assert targets["weights"].shape == (4, 16) and (targets["weights"] > 0).all()
    assert (tmp_path / PRIOR_FILE).is_file()
    rebuilt = _network("classification", None, tmp_path).tasks["colorization"]
    assert torch.equal(rebuilt.target.centers, task.target.centers) and torch.equal(rebuilt.target.weights, task.target.weights)


def test_rebuilding_without_a_saved_prior_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="colorization prior .* is missing"):
        _network("classification", None, tmp_path)


def test_data_driven_bins_come_from_the_training_images(images, tmp_path):
    cfg = load_config(PRESET, SMALL + ["colorization.bins=data", "colorization.bin_size=20"])
    task = Network.from_config(cfg, 10, images=images, run=tmp_path).tasks["colorization"]
    assert 5 < task.target.centers.shape[0] < 313
    assert (task.target.centers.remainder(20) == 0).all()


def test_hue_chroma_decoding_recovers_the_colour():
    from chromaproxy.color import hue_chroma, hue_chroma_to_ab, rgb_to_lab

    rgb = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    hue, chroma = hue_chroma(rgb)
    lab = rgb_to_lab(rgb)
    assert torch.allclose(hue_chroma_to_ab(hue, chroma, lab[:, :1]), lab[:, 1:], atol=0.05)


@pytest.mark.parametrize("loss", ["regression", "classification", "histogram"])
def test_dense_prediction_gives_ab_at_every_pixel(loss, images, tmp_path):
    network = _network(loss, images, tmp_path).eval()
    rgb = to_float(images.images[:2])
    features = network.backbone.forward_features(network.input(rgb), "all")
    L = network.input(rgb) * 50 + 50
    ab = network.tasks["colorization"].predict_ab(features, L, chunk=100)
    assert ab.shape == (2, 2, 32, 32) and torch.isfinite(ab).all()
    assert ab.abs().max() < 130


def test_a_linear_head_on_one_tap_is_a_dense_1x1_classifier(images, tmp_path):
    cfg = load_config(PRESET, SMALL + ["colorization.hidden=0", "colorization.taps=[block3]"])
    network = Network.from_config(cfg, 10, images=images, run=tmp_path).eval()
    task = network.tasks["colorization"]
    assert isinstance(task.head, torch.nn.Linear)
    from chromaproxy.models.hypercolumn import hypercolumns, random_points, sample

    maps = network.backbone.forward_features(network.input(to_float(images.images[:2])), ["block3"])["block3"]
    points = random_points(2, 16, torch.Generator().manual_seed(0), maps.device)
    logits = torch.nn.functional.conv2d(maps, task.head.weight[:, :, None, None], task.head.bias)  # dense 1x1
    assert torch.allclose(task.head(hypercolumns({"block3": maps}, points)), sample(logits, points), atol=1e-4)
