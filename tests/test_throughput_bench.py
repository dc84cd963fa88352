"""Smoke test of benchmarks/throughput.py: its measurement functions at toy size (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chromaproxy.config import load_config
from chromaproxy.data.augment import AugmentSpec
from chromaproxy.data.types import ImageSet
from conftest import load_benchmark, tiny_overrides

throughput = load_benchmark("throughput")


def random_images(n: int, seed: int = 0) -> ImageSet:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return ImageSet(images, torch.randint(0, 10, (n,), generator=generator), [str(i) for i in range(10)])


def test_pil_reference_matches_batched_crop_and_flip():
    images = random_images(16).images
    throughput.check_same_augmentation(images, padding=4)
    # the check is not vacuous: a flip the other way gives other pixels
    image = images[0].permute(1, 2, 0).numpy()
    assert not np.array_equal(throughput.pil_crop_flip(image, 2, 3, True, 4), throughput.pil_crop_flip(image, 2, 3, False, 4))
    # zero padding: the top-left crop of the padded image starts with 4 black rows and columns
    corner = throughput.pil_crop_flip(image, 0, 0, False, 4)
    assert corner[:4].max() == 0 and corner[:, :4].max() == 0 and np.array_equal(corner[4:, 4:], image[:28, :28])


def test_both_data_pipelines_deliver_the_same_kind_of_batch():
    images, batch, augment_spec = random_images(320), 32, AugmentSpec()
    cpu = torch.device("cpu")
    ours = list(throughput.ours_batches(images, augment_spec, batch, cpu, seed=0))
    hwc = np.ascontiguousarray(images.images.permute(0, 2, 3, 1).numpy())
    reference = list(throughput.reference_loader(hwc, images.labels.numpy(), augment_spec, batch, workers=0))
    assert len(ours) == len(reference) == 10
    for rgb, labels in ours + reference:
        throughput.check_batch(rgb, labels, batch)
    # same pixel statistics: both are crops of the same images with zero borders
    ours_mean = torch.cat([rgb for rgb, _ in ours]).mean()
    reference_mean = torch.cat([rgb for rgb, _ in reference]).mean()
    assert abs(float(ours_mean - reference_mean)) < 0.01
    rate = throughput.timed_batches(throughput.ours_batches(images, augment_spec, batch, cpu, seed=1), batch, cpu)
    assert rate > 0


def test_compute_rate_and_trainer_rate_at_toy_size(cifar_root, tmp_path):
    overrides = tiny_overrides(cifar_root, tmp_path / "unused") + ["train.max_steps=4", "train.log_every=2", "device=cpu"]
    cfg = load_config(throughput.PRESET, overrides)
    rate, images = throughput.trainer_rate(cfg, tmp_path / "run", throughput.Console(quiet=True))
    assert rate > 0 and images == 2 * 32  # the first of two 2-step windows is warm-up
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.rand(32, 3, 32, 32, generator=generator), torch.randint(0, 10, (32,), generator=generator))]
    assert throughput.compute_rate(cfg, batches, 10, warmup=1, steps=2) > 0


def test_peak_rss_is_the_childs_own(tmp_path):
    parent = b"p" * (500 * 2**20)  # touched pages: Linux would copy this RSS into a child's ru_maxrss
    child = ["timeit", "-n", "1", "-r", "1", "b = b'x' * (300 * 2**20)"]
    peak, seconds = throughput.peak_rss(child, tmp_path / "child.log")
    assert 300 * 2**20 <= peak < 450 * 2**20 and seconds > 0 and len(parent)
    with pytest.raises(RuntimeError, match="failed"):
        throughput.peak_rss(["timeit", "-n", "1", "-r", "1", "raise SystemExit(3)"], tmp_path / "fail.log")


def test_missing_models_are_skipped(capsys):
    assert throughput.available_models(["nin", "no-such-net"]) == ["nin"]
    assert "no-such-net" in capsys.readouterr().out
