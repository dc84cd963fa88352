"""Color-S4L's recolorized label and the seeds command: recolorized images keep L and change ab, are
cached with the colorizer's identity, refuse the wrong colorizer; ``seeds=[0,1]`` writes both runs and
the aggregate that ``report`` shows as mean ± std."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from chromaproxy.color import rgb_to_lab, split_lab
from chromaproxy.config import load_config
from chromaproxy.data.augment import to_float
from chromaproxy.engine.data import prepare_data
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.trainer import Trainer
from chromaproxy.errors import UserError
from chromaproxy.eval.test_results import aggregate, format_error, mean_std
from chromaproxy.inference import recolorize as recolorize_module
from conftest import REPO, tiny_overrides

QUICK = REPO / "configs" / "s4l-color-cifar10-1000-quick.yaml"
TINY_SEMI = {"data.labels_per_class": 3, "train.batch_size": 32, "train.labeled_batch_size": 32,
             "train.max_steps": 4, "eval.test_limit": 64}


@pytest.fixture(scope="module")
def colorizer(tmp_path_factory):
    """A colorization run of a few steps on the images the S4L runs below use."""
    from conftest import data_root

    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip("CIFAR-10 not found (set CHROMAPROXY_DATA)")
    out = tmp_path_factory.mktemp("colorizer") / "color"
    cfg = load_config(REPO / "configs" / "colorization-cifar10-quick.yaml",
                      tiny_overrides(root, out, **{"train.max_steps": 3, "eval.test_limit": 32}))
    Trainer(cfg, open_run_dir(cfg)).fit()
    return out


def _s4l(cifar_root, out, colorizer, **extra):
    return load_config(QUICK, tiny_overrides(cifar_root, out, **TINY_SEMI, colorizer=colorizer, **extra))


def test_recolorized_images_keep_the_lightness_and_change_the_colour(cifar_root, tmp_path, colorizer, one_thread):
    cfg = _s4l(cifar_root, tmp_path / "s4l", colorizer)
    data = prepare_data(cfg, open_run_dir(cfg), progress=False)
    original, recolored = to_float(data.train.images), to_float(data.train.recolorized)
    (L0, ab0), (L1, ab1) = split_lab(rgb_to_lab(original)), split_lab(rgb_to_lab(recolored))
    assert (L1 - L0).abs().mean() < 0.5 and (L1 - L0).abs().quantile(0.99) < 3  # uint8 rounding and the gamut
    assert (ab1 - ab0).abs().mean() > 2
    assert (tmp_path / "s4l" / "recolorized.safetensors").is_file()


def test_the_cache_is_reused_for_the_same_colorizer_and_images_only(cifar_root, tmp_path, colorizer, monkeypatch, one_thread):
    cfg = _s4l(cifar_root, tmp_path / "s4l", colorizer)
    run = open_run_dir(cfg)
    first = prepare_data(cfg, run, progress=False).train.recolorized

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although the cache fits")

    monkeypatch.setattr(recolorize_module, "recolorize", refuse)
    assert torch.equal(prepare_data(cfg, run, progress=False).train.recolorized, first)
    made_in = recolorize_module.precision(torch.device("cpu"))
    monkeypatch.setenv("CHROMAPROXY_PRECISION", "fp32" if made_in == "bf16" else "bf16")  # bf16 colours differ
    with pytest.raises(AssertionError, match="recomputed"):
        prepare_data(cfg, run, progress=False)
    monkeypatch.setenv("CHROMAPROXY_PRECISION", made_in)
    cfg.data.limit = 200  # other images: the cache does not fit
    with pytest.raises(AssertionError, match="recomputed"):
        prepare_data(cfg, run, progress=False)


def test_a_sibling_run_s_cache_is_shared_when_it_fits(cifar_root, tmp_path, colorizer, monkeypatch, one_thread):
    """The seeds of seeds=[...] live side by side (out/seed<k>) and recolorize the same images once."""
    seed0 = _s4l(cifar_root, tmp_path / "seed0", colorizer)
    first = prepare_data(seed0, open_run_dir(seed0), progress=False).train.recolorized

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although a sibling's cache fits")

    monkeypatch.setattr(recolorize_module, "recolorize", refuse)
    cfg = _s4l(cifar_root, tmp_path / "seed1", colorizer, seed=1)
    assert torch.equal(prepare_data(cfg, open_run_dir(cfg), progress=False).train.recolorized, first)


def test_a_run_that_is_not_a_colorizer_or_at_another_size_is_a_one_line_error(cifar_root, tmp_path, colorizer):
    supervised = tmp_path / "sup"
    cfg = load_config(REPO / "configs" / "supervised-cifar10-quick.yaml",
                      tiny_overrides(cifar_root, supervised, **{"train.max_steps": 1, "eval.test_limit": 8}))
    Trainer(cfg, open_run_dir(cfg)).fit()
    with pytest.raises(UserError, match="not colorization"):
        prepare_data(_s4l(cifar_root, tmp_path / "a", supervised), None, progress=False)
    with pytest.raises(UserError, match="is not a trained run"):
        prepare_data(_s4l(cifar_root, tmp_path / "b", tmp_path / "nowhere"), None, progress=False)
    larger = tmp_path / "color64"
    shutil.copytree(colorizer, larger)
    saved = yaml.safe_load((larger / "config.yaml").read_text())
    saved["data"]["image_size"] = 64
    (larger / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(UserError, match="trained on 64 px images, this run uses data.image_size=32"):
        prepare_data(_s4l(cifar_root, tmp_path / "c", larger), None, progress=False)


def test_colorizer_and_the_seventh_label_go_together(cifar_root, tmp_path):
    with pytest.raises(UserError, match="needs colorizer=RUN"):
        load_config(QUICK, tiny_overrides(cifar_root, tmp_path))
    with pytest.raises(UserError, match="only feeds the flips task"):
        load_config(REPO / "configs" / "sesemi-cifar10-1000-quick.yaml", tiny_overrides(cifar_root, tmp_path, colorizer="runs/x"))


def test_a_color_s4l_run_trains_the_seven_way_head(cifar_root, tmp_path, colorizer, one_thread):
    cfg = _s4l(cifar_root, tmp_path / "s4l", colorizer)
    trainer = Trainer(cfg, open_run_dir(cfg))
    assert trainer.network.tasks["flips"].head[-1].out_features == 7
    test = trainer.fit()
    assert "supervised/acc" in test  # the test split has no recolorized twins: flips is left out there
    records = [json.loads(line) for line in (tmp_path / "s4l" / "metrics.jsonl").read_text().splitlines()]
    assert all("flips/loss" in r for r in records if "split" not in r)


def test_mean_and_sample_std_against_a_hand_computation():
    assert mean_std([20.0, 21.0, 22.0]) == (21.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    summary = aggregate({0: {"supervised/acc": 0.8, "loss": 1.0}, 1: {"supervised/acc": 0.7, "loss": 2.0}})
    entry = summary["test_error"]["supervised"]
    assert entry["values"] == pytest.approx([20.0, 30.0]) and entry["mean"] == pytest.approx(25.0)
    assert entry["std"] == pytest.approx(7.0710678)
    assert format_error(20.454, 0.3449) == "20.45 ± 0.34" and format_error(46.43, None) == "46.43"


def test_seeds_write_every_run_and_the_aggregate_that_report_shows(cifar_root, tmp_path):
    out = tmp_path / "sesemi"
    args = [QUICK.with_name("sesemi-cifar10-1000-quick.yaml"), *tiny_overrides(cifar_root, out, **TINY_SEMI), "seeds=[0,1]"]
    env = {**os.environ, "CHROMAPROXY_DATA": str(cifar_root), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "chromaproxy", "pretrain", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"seed0", "seed1", "seeds.json"}
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["test_error"]["supervised"]["values"]) == 2
    assert load_config(out / "seed1" / "config.yaml").seed == 1
    splits = [json.loads((out / f"seed{s}" / "splits.json").read_text())["labeled"] for s in (0, 1)]
    assert splits[0] != splits[1]  # each seed draws its own labeled split
    again = subprocess.run([sys.executable, "-m", "chromaproxy", "pretrain", *map(str, args)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and again.stderr.count("finished before") == 2, again.stderr
    shown = subprocess.run([sys.executable, "-m", "chromaproxy", "report", str(out), str(out / "seed0"), "--no-visuals"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    entry = summary["test_error"]["supervised"]
    assert f"{entry['mean']:.2f} ± {entry['std']:.2f}" in shown.stdout
    assert (tmp_path / "sesemi" / "report" / "report.md").is_file()
