"""PIC end to end at toy scale: the task's targets and loss scale, Polyak averaging in the trainer and in
what inference loads, ``colorize --samples`` on a real photo, and the colorization protocol's PIC records."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from chromaproxy.checkpoint import load_checkpoint
from chromaproxy.ema import PolyakAverage
from chromaproxy.errors import UserError
from chromaproxy.eval.protocols.pic_quality import diversity
from conftest import REPO, data_root

TINY = ["data.limit=128", "model.width=0.125", "pic.filters=8", "pic.blocks=1", "train.batch_size=32",
        "train.max_steps=4", "eval.test_limit=32", "train.ema=0.9", "device=cpu"]


@pytest.fixture(scope="module")
def pic_run(tmp_path_factory) -> Path:
    from chromaproxy.config import load_config
    from chromaproxy.engine.run_dir import open_run_dir
    from chromaproxy.engine.trainer import Trainer

    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip(f"CIFAR-10 not found under {root} (set CHROMAPROXY_DATA)")
    out = tmp_path_factory.mktemp("runs") / "pic"
    cfg = load_config(REPO / "configs" / "pic-cifar10-quick.yaml", [f"data.root={root}", *TINY, f"out={out}"])
    Trainer(cfg, open_run_dir(cfg)).fit()
    return out


def test_polyak_average_follows_the_ramped_decay_and_swaps_back():
    net = torch.nn.Linear(2, 1)
    average = PolyakAverage(net, decay=0.99)
    expected = net.weight.detach().clone()
    for step in range(5):
        with torch.no_grad():
            net.weight.add_(1.0)
        average.update(net, step)
        rate = min(0.99, (1 + step) / (10 + step))
        expected = rate * expected + (1 - rate) * net.weight.detach()
    torch.testing.assert_close(average.shadow["weight"], expected)
    trained = net.weight.detach().clone()
    with average.swapped_in(net):
        torch.testing.assert_close(net.weight.detach(), expected)
    torch.testing.assert_close(net.weight.detach(), trained)


def test_the_loss_is_bits_per_chroma_dimension_and_a_uniform_model_scores_log2_levels(pic_run):
    from chromaproxy.network import load_network

    _, network = load_network(pic_run)
    task = network.tasks["pic"]
    rgb = torch.rand(2, 3, 32, 32)
    ab, L = task.chroma(rgb)
    assert ab.shape == (2, 2, 16, 16) and L.shape == (2, 1, 16, 16)
    assert torch.equal(task.mixture.quantize(ab), ab) and ab.abs().max() <= 1
    uniform = lambda params, x, extra: torch.full((x.shape[0],), 2 * math.log(1 / task.mixture.levels))  # noqa: E731
    task.mixture.log_prob = uniform
    bpd = network.task_outputs("pic", rgb, {"ab": ab, "L": L})["bpd"]
    assert bpd.item() == pytest.approx(math.log2(256))


def test_checkpoints_keep_the_polyak_average_and_inference_loads_it(pic_run):
    from chromaproxy.network import load_backbone, load_network

    path = pic_run / "checkpoints" / "last.safetensors"
    trained, averaged = load_checkpoint(path, "model."), load_checkpoint(path, "ema.")
    assert trained.keys() == averaged.keys()
    assert any(not torch.equal(trained[k], averaged[k]) for k in trained)
    _, network = load_network(pic_run)
    for key, value in network.state_dict().items():
        assert torch.equal(value, averaged[key])
    backbone = load_backbone(pic_run).backbone.state_dict()
    assert all(torch.equal(v, averaged[f"backbone.{k}"]) for k, v in backbone.items())


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ))


def test_colorize_samples_writes_k_distinct_full_size_images_of_a_real_photo(pic_run, tmp_path):
    from sklearn.datasets import load_sample_image

    photo = tmp_path / "flower.jpg"
    Image.fromarray(load_sample_image("flower.jpg")[::4, ::4]).save(photo)  # a real photo, 160 x 107
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    result = _cli("colorize", pic_run, photo, tmp_path / "broken.jpg", "--samples", "3", "--out", tmp_path / "out")
    assert result.returncode == 1 and "broken.jpg" in result.stderr and "Traceback" not in result.stderr
    assert "colorized 3 images (3 per photo), failed 1" in result.stdout
    images = [np.asarray(Image.open(tmp_path / "out" / f"flower-{k}.png")) for k in (1, 2, 3)]
    assert all(image.shape == (107, 160, 3) for image in images)
    assert all(not np.array_equal(a, b) for a, b in ((images[0], images[1]), (images[1], images[2]), (images[0], images[2])))
    again = _cli("colorize", pic_run, photo, "--samples", "3", "--out", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again" / "flower-2.png")), images[1])  # --seed 0 both times


@pytest.mark.parametrize(
    "args, message",
    [
        (["--decode", "annealed"], "--decode annealed does not apply to a pic run"),
        (["--decode", "mode", "--samples", "2"], "--decode mode gives one answer"),
        (["--decode", "mode", "--temperature", "0.5"], "--temperature does not change --decode mode"),
        (["--samples", "0"], "--samples 0 must be at least 1"),
    ],
)
def test_colorize_refuses_options_that_do_not_fit_a_pic_run(pic_run, tmp_path, args, message):
    from chromaproxy.inference.colorize import colorize_paths

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    options = dict(zip((a.removeprefix("--") for a in args[::2]), args[1::2]))
    typed = {k: (v if k == "decode" else float(v) if k == "temperature" else int(v)) for k, v in options.items()}
    with pytest.raises(UserError, match=message):
        colorize_paths(pic_run, [tmp_path / "x.png"], tmp_path / "out", **typed)


def test_colorization_protocol_reports_bits_per_dim_samples_and_diversity(pic_run):
    import json

    result = _cli("evaluate", pic_run, "--protocol", "colorization", "eval.test_limit=16", "colorquality.samples=2",
                  "colorquality.grid_images=2")
    assert result.returncode == 0, result.stderr
    records = json.loads((pic_run / "eval" / "colorization.json").read_text())["results"]
    metrics = {(r["metric"], r.get("decode")) for r in records}
    assert {("bits_per_dim", None), ("diversity", None), ("auc", "mode"), ("auc", "sample"),
            ("saturation_predicted", "sample")} <= metrics
    bits = next(r["value"] for r in records if r["metric"] == "bits_per_dim")
    assert 0 < bits < 12
    assert (pic_run / "eval" / "colorization_grid.png").is_file()


def test_diversity_is_the_mean_pairwise_ab_distance():
    ab = torch.zeros(1, 3, 2, 2, 2)
    ab[0, 1, 0] = 3.0  # draw 2: a = 3 everywhere
    ab[0, 2, 1] = 4.0  # draw 3: b = 4 everywhere
    assert diversity(ab).item() == pytest.approx((3 + 4 + 5) / 3)


def test_the_end_of_run_test_bits_per_dim_come_from_the_polyak_average(pic_run):
    import json

    from chromaproxy.data.augment import to_float
    from chromaproxy.engine.data import prepare_data
    from chromaproxy.network import load_network

    logged = [json.loads(line) for line in (pic_run / "metrics.jsonl").read_text().splitlines()]
    test = next(r for r in logged if r.get("split") == "test")
    cfg, network = load_network(pic_run)
    rgb = to_float(prepare_data(cfg, None, progress=False).test.images[:32])
    ab, L = network.tasks["pic"].chroma(rgb)
    with torch.no_grad():
        bpd = network.task_outputs("pic", rgb, {"ab": ab, "L": L})["bpd"].item()
    assert test["pic/bpd"] == pytest.approx(bpd, rel=1e-4)
