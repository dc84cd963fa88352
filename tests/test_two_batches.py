"""Semi-supervised training (SESEMI, Color-S4L): the labeled batch stream, the two batches of a step,
the flips task's images without random flips, label splits fixed by the seed, and whole runs."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from chromaproxy.checkpoint import load_checkpoint
from chromaproxy.config import load_config
from chromaproxy.engine import stopping
from chromaproxy.data.augment import AugmentSpec
from chromaproxy.data.types import UNLABELED, ImageSet
from chromaproxy.engine.batches import StepBatches, main_batch_spec
from chromaproxy.engine.data import prepare_data
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.sampler import RepeatingSampler
from chromaproxy.engine.stopping import StopRequested
from chromaproxy.engine.trainer import Trainer
from chromaproxy.errors import UserError
from chromaproxy.tasks import TASKS
from conftest import REPO, tiny_overrides

SEMI = {"tasks": "[supervised,flips]", "task_weights": "[1,1]", "data.labels_per_class": 3,
        "train.labeled_batch_size": 16}


def _images(count: int = 40, labeled: int = 10) -> ImageSet:
    pixels = torch.randint(0, 256, (count, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.full((count,), UNLABELED)
    labels[:labeled] = torch.arange(labeled) % 5
    return ImageSet(pixels, labels, [str(c) for c in range(5)])


def test_repeating_sampler_is_a_pure_function_of_the_step_and_repeats_the_pool_evenly():
    pool = torch.arange(100, 110)
    sampler = RepeatingSampler(pool, 4, seed=3)
    stream = torch.cat([sampler.batch(step) for step in range(10)])  # 40 = 4 passes over the pool
    assert torch.equal(stream, torch.cat([RepeatingSampler(pool, 4, seed=3).batch(s) for s in range(10)]))
    for cycle in range(4):
        assert sorted(stream[cycle * 10 : (cycle + 1) * 10].tolist()) == pool.tolist()
    assert not torch.equal(stream, torch.cat([RepeatingSampler(pool, 4, seed=4).batch(s) for s in range(10)]))


def test_repeating_sampler_batches_larger_than_the_pool_and_rank_shares_make_the_global_batch():
    pool = torch.arange(3)
    big = RepeatingSampler(pool, 8, seed=0).batch(5)
    assert len(big) == 8 and set(big.tolist()) == {0, 1, 2}
    pool = torch.arange(50)
    whole = RepeatingSampler(pool, 16, seed=1).batch(7)
    parts = [RepeatingSampler(pool, 16, seed=1, rank=r, world_size=2).batch(7) for r in range(2)]
    assert torch.equal(torch.cat(parts), whole)


def test_the_labeled_batch_holds_only_labeled_images_and_the_unlabeled_batch_no_label():
    images = _images()
    labeled_pool = torch.nonzero(images.labels != UNLABELED).flatten()
    spec = AugmentSpec(crop_padding=0, hflip=False)
    maker = StepBatches(spec, spec, RepeatingSampler(labeled_pool, 6, seed=0), torch.device("cpu"))
    for step in range(5):
        index = torch.arange(step * 8, step * 8 + 8) % len(images)  # includes labeled images
        inputs = maker.training(images, index, step, torch.Generator().manual_seed(step))
        assert (inputs["labels"] == UNLABELED).all()
        rgb, labels = inputs["labeled"]
        assert (labels != UNLABELED).all()
        chosen = maker.labeled_sampler.batch(step)
        assert torch.equal(labels, images.labels[chosen])
        assert torch.equal(rgb, images.images[chosen].float() / 255)  # the labels belong to these very images


def test_recolorized_twins_get_the_same_crop_and_flip_as_their_originals():
    images = _images()
    images.recolorized = 255 - images.images
    spec = AugmentSpec(crop_padding=2, padding_mode="reflect", hflip=True)
    maker = StepBatches(spec, spec, None, torch.device("cpu"))
    inputs = maker.training(images, torch.arange(16), 0, torch.Generator().manual_seed(0))
    assert torch.allclose(inputs["recolorized"], 1 - inputs["rgb"], atol=1e-6)
    plain = maker.training(_images(), torch.arange(16), 0, torch.Generator().manual_seed(0))
    assert torch.equal(plain["rgb"], inputs["rgb"])  # the twin draws nothing of its own


def test_tasks_that_predict_flips_get_no_random_flip():
    spec = AugmentSpec(hflip=True)
    flips = TASKS["flips"]
    assert main_batch_spec(spec, [flips]).hflip is False
    assert main_batch_spec(spec, [TASKS["rotation"], TASKS["supervised"]]).hflip is True
    assert main_batch_spec(spec, [flips]).crop_padding == spec.crop_padding


def test_label_splits_are_reproducible_from_their_seed(cifar_root, tmp_path):
    def labeled(seed: int, out: str) -> list[int]:
        cfg = load_config(REPO / "configs" / "supervised-cifar10-quick.yaml",
                          tiny_overrides(cifar_root, tmp_path / out, **{"data.labels_per_class": 4, "seed": seed}))
        run = open_run_dir(cfg)
        prepare_data(cfg, run, progress=False)
        return json.loads((run / "splits.json").read_text())["labeled"]

    first, again, other = labeled(0, "a"), labeled(0, "b"), labeled(1, "c")
    assert first == again and len(first) == 40
    assert first != other


def test_a_semi_supervised_run_trains_both_heads_on_their_own_batches(cifar_root, tmp_path, one_thread):
    cfg = load_config(REPO / "configs" / "supervised-cifar10-quick.yaml",
                      tiny_overrides(cifar_root, tmp_path / "run", **SEMI, **{"train.max_steps": 6, "train.log_every": 3}))
    trainer = Trainer(cfg, open_run_dir(cfg))
    assert trainer.batches.spec.hflip is False and trainer.batches.labeled_spec.hflip is True
    seen = []
    original = trainer.batches.training

    def spy(images, index, step, generator):
        inputs = original(images, index, step, generator)
        seen.append((images.labels[index], inputs["labeled"][1]))
        return inputs

    trainer.batches.training = spy
    test = trainer.fit()
    assert len(seen) == 6
    assert any((unlabeled == UNLABELED).any() for unlabeled, _ in seen)  # the unlabeled batch draws every image
    assert all(len(labels) == 16 and (labels != UNLABELED).all() for _, labels in seen)
    assert {"supervised/acc", "flips/acc"} <= test.keys()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("supervised/loss" in r and "flips/loss" in r for r in records if "split" not in r)


def test_a_semi_supervised_run_stopped_mid_way_resumes_to_the_same_weights(cifar_root, tmp_path, one_thread, monkeypatch):
    def trainer(out, **extra):
        cfg = load_config(REPO / "configs" / "supervised-cifar10-quick.yaml",
                          tiny_overrides(cifar_root, tmp_path / out, **SEMI, **{"train.max_steps": 8}, **extra))
        return Trainer(cfg, open_run_dir(cfg))

    trainer("reference").fit()
    poll = stopping.Stopper.poll
    monkeypatch.setattr(stopping.Stopper, "poll", lambda self, step: (signal.SIGTERM, False) if step == 3 else poll(self, step))
    with pytest.raises(StopRequested):
        trainer("stopped").fit()
    monkeypatch.setattr(stopping.Stopper, "poll", poll)
    trainer("stopped", resume=True).fit()
    expected = load_checkpoint(tmp_path / "reference/checkpoints/last.safetensors", "model.")
    got = load_checkpoint(tmp_path / "stopped/checkpoints/last.safetensors", "model.")
    assert all(torch.equal(expected[k], got[k]) for k in expected)


@pytest.mark.parametrize("tasks, expected", [
    ("[supervised]", "needs both a task that needs labels"),
    ("[flips]", "needs both a task that needs labels"),
])
def test_labeled_batch_size_needs_a_labeled_and_an_unlabeled_task(cifar_root, tmp_path, tasks, expected):
    weights = "[1]"
    cfg = load_config(REPO / "configs" / "supervised-cifar10-quick.yaml",
                      tiny_overrides(cifar_root, tmp_path / "run", tasks=tasks, task_weights=weights,
                                     **{"train.labeled_batch_size": 16}))
    with pytest.raises(UserError, match=expected):
        Trainer(cfg, open_run_dir(cfg))
