"""Image-model runs end to end at toy scale: the loss is the bound in bits per RGB dimension and its parts
add up, the likelihood protocol's records, ``chromaproxy sample`` (plain draws, MAP sampling, colouring
test images' gray) and the one-line errors of the image-model tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chromaproxy.config import load_config
from chromaproxy.errors import UserError
from chromaproxy.network import Network
from conftest import REPO, TASK_REQUIRED, data_root

TINY = ["data.limit=64", "train.batch_size=16", "train.max_steps=3", "eval.test_limit=16", "train.ema=0.9", "device=cpu"]


def _tiny(task: str) -> list[str]:
    return [f"{k}={v}" for k, v in TASK_REQUIRED[task].items()]


def _train(preset: str, task: str, out: Path, *extra: str) -> Path:
    from chromaproxy.engine.run_dir import open_run_dir
    from chromaproxy.engine.trainer import Trainer

    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip(f"CIFAR-10 not found under {root} (set CHROMAPROXY_DATA)")
    cfg = load_config(REPO / "configs" / preset, [f"data.root={root}", *TINY, *_tiny(task), *extra, f"out={out}"])
    Trainer(cfg, open_run_dir(cfg)).fit()
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_the_module():
    from conftest import single_thread

    with single_thread():
        yield


@pytest.fixture(scope="module")
def gray_run(tmp_path_factory) -> Path:
    return _train("grayscale-pixelcnn-cifar10-quick.yaml", "grayscale_pixelcnn", tmp_path_factory.mktemp("runs") / "gray")


@pytest.fixture(scope="module")
def pyramid_run(tmp_path_factory) -> Path:
    return _train("pyramid-pixelcnn-cifar10-quick.yaml", "pyramid_pixelcnn", tmp_path_factory.mktemp("runs") / "pyr")


def _cli(*args) -> subprocess.CompletedProcess:
    """One intra-op thread: the sampler's per-pixel convolutions are tiny, and split over busy shared cores
    each one waits on the other thread (milliseconds instead of microseconds)."""
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _network(task: str, *extra: str) -> Network:
    cfg = load_config(None, [f"tasks=[{task}]", "task_weights=[1]", *_tiny(task), *extra])
    torch.manual_seed(0)
    return Network.from_config(cfg, num_classes=10)


@pytest.mark.parametrize("task", ["pixelcnn", "grayscale_pixelcnn", "pyramid_pixelcnn"])
def test_the_loss_is_the_bound_in_bits_per_rgb_dimension_and_its_parts_add_up(task, one_thread):
    network = _network(task).eval()
    rgb = torch.randint(0, 256, (3, 3, 32, 32)).float() / 255
    inputs, image = network.tasks[task].make_batch(rgb, None, torch.Generator())
    assert torch.equal(image, (rgb * 255).round().long())
    with torch.no_grad():
        out = network.task_outputs(task, inputs, image)
        nats = sum(network.tasks[task].model.nll_parts(image).values())  # (B,)
    parts = [v for k, v in out.items() if k.startswith("bpd_")]
    assert len(parts) == {"pixelcnn": 1, "grayscale_pixelcnn": 2, "pyramid_pixelcnn": 3}[task]
    assert out["bpd"].item() == pytest.approx(sum(parts).item(), rel=1e-5)
    assert out["bpd"].item() == pytest.approx((nats / (3 * 32 * 32 * np.log(2))).mean().item(), rel=1e-5)


def test_an_image_model_on_a_real_backbone_and_a_u_net_or_pyramid_on_an_odd_side_are_one_line_errors(one_thread):
    with pytest.raises(UserError, match="set model.name=pixels"):
        _network("pixelcnn", "model.name=nin")
    network = _network("pyramid_pixelcnn")
    with pytest.raises(UserError, match="must divide by 4"):
        network.tasks["pyramid_pixelcnn"].bits_per_dim_parts(torch.zeros(1, 3, 30, 30, dtype=torch.long))
    with pytest.raises(UserError, match="embedding_up"):
        _network("pyramid_pixelcnn", "pyramid_pixelcnn.embedding_up=[1,2]")
    u_net = _network("pixelcnn", "pixelcnn.scales=3")
    with pytest.raises(UserError, match="side 30 must divide by 4 for pixelcnn.scales=3"):
        u_net.tasks["pixelcnn"].bits_per_dim_parts(torch.zeros(1, 3, 30, 30, dtype=torch.long))


def test_without_scales_a_config_keeps_the_one_resolution_network_that_runs_before_the_u_net_saved():
    """A run's config.yaml written before ``pixelcnn.scales`` existed has no such key: its checkpoint must
    still fit, so the default is one resolution and only the paper presets ask for the U-Net."""
    from chromaproxy.pixelcnn.multiscale import MultiScalePixelCNN
    from chromaproxy.pixelcnn.network import ConditionalPixelCNN

    cfg = load_config(None, ["tasks=[pixelcnn]", "task_weights=[1]", "model.name=pixels", "pixelcnn.filters=8"])
    assert isinstance(Network.from_config(cfg, num_classes=10).tasks["pixelcnn"].model.net, ConditionalPixelCNN)
    paper = load_config(REPO / "configs" / "pixelcnn-cifar10.yaml", ["pixelcnn.filters=8"])
    assert isinstance(Network.from_config(paper, num_classes=10).tasks["pixelcnn"].model.net, MultiScalePixelCNN)


def test_likelihood_protocol_splits_the_bound_by_resolution(pyramid_run):
    result = _cli("evaluate", pyramid_run, "--protocol", "likelihood", "eval.test_limit=8", "likelihood.samples=2")
    assert result.returncode == 0, result.stderr
    records = json.loads((pyramid_run / "eval" / "likelihood.json").read_text())["results"]
    bits = {r["part"]: r["value"] for r in records if r["metric"] == "bits_per_dim"}
    assert set(bits) == {"total", "8", "16", "32"}
    assert bits["total"] == pytest.approx(bits["8"] + bits["16"] + bits["32"], rel=1e-6)
    at = {r["resolution"]: r["value"] for r in records if r["metric"] == "bits_per_dim_at"}
    assert at[8] == pytest.approx(bits["8"] * 16, rel=1e-6)  # the 8x8 factor's share of 32x32 dims, per 8x8 dim
    assert at[32] == pytest.approx(bits["total"], rel=1e-6)
    assert (pyramid_run / "eval" / "likelihood_samples.png").is_file()


def test_sample_writes_a_grid_and_map_sampling_differs_from_ordinary_draws(pyramid_run, tmp_path):
    for name, flags in (("plain", []), ("map", ["--map"]), ("sharp", ["--variance-reduction", "0.5"])):
        result = _cli("sample", pyramid_run, "--n", 4, "--out", tmp_path / f"{name}.png", *flags)
        assert result.returncode == 0, result.stderr
    grids = {name: np.asarray(Image.open(tmp_path / f"{name}.png")) for name in ("plain", "map", "sharp")}
    assert grids["plain"].shape == (2 * (2 + 34), 2 * (2 + 4 * 34), 3)  # one row of 4 images of 32 px, 2 px gaps, x2
    assert not np.array_equal(grids["plain"], grids["map"]) and not np.array_equal(grids["plain"], grids["sharp"])
    assert "one full pass per pixel" not in result.stderr  # the pyramid's factors use the cached sampler


def test_sampling_a_u_net_says_it_runs_one_pass_per_pixel(tmp_path):
    """PixelCNN++'s U-Net has only the naive sampler: ``sample`` says so before the long draw, and draws."""
    run = _train("pixelcnn-cifar10-quick.yaml", "pixelcnn", tmp_path / "unet", "pixelcnn.scales=3")
    result = _cli("sample", run, "--n", 2, "--out", tmp_path / "unet.png")
    assert result.returncode == 0, result.stderr
    assert "a U-Net, drawn one full pass per pixel (1,024 passes per batch of 2)" in " ".join(result.stderr.split())
    assert np.asarray(Image.open(tmp_path / "unet.png")).shape == (2 * (2 + 34), 2 * (2 + 2 * 34), 3)


def test_sample_stages_shows_each_resolution_and_the_last_is_the_image_drawn(pyramid_run, tmp_path):
    from chromaproxy.inference.sample import draw_stages, image_model_task
    from chromaproxy.network import load_network
    from chromaproxy.pixelcnn.image_models import Decode

    result = _cli("sample", pyramid_run, "--n", 2, "--stages", "--out", tmp_path / "stages.png")
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(tmp_path / "stages.png")).shape == (2 * (2 + 2 * 34), 2 * (2 + 3 * 34), 3)
    _, network = load_network(pyramid_run)
    stages = draw_stages(image_model_task(network, pyramid_run), 2, 32, 0, Decode())
    assert [s.shape[-1] for s in stages] == [8, 16, 32]


def test_sample_colours_the_gray_of_test_images_for_a_grayscale_run_only(gray_run, pyramid_run, tmp_path):
    result = _cli("sample", gray_run, "--gray-from", "test", "--n", 2, "--out", tmp_path / "coloured.png")
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(tmp_path / "coloured.png"))
    assert grid.shape == (2 * (2 + 2 * 34), 2 * (2 + 6 * 34), 3)  # rows: gray | 4 samples | truth
    refused = _cli("sample", pyramid_run, "--gray-from", "test", "--n", 2, "--out", tmp_path / "x.png")
    assert refused.returncode != 0 and "needs a grayscale_pixelcnn run" in refused.stderr
    assert "Traceback" not in refused.stderr
