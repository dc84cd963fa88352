"""Colorization quality metrics against naive references, their limits, and the protocol end to end."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from rich.console import Console

from chromaproxy.color import nearest_bin, rebalance_weights, zhang_313_bins
from chromaproxy.errors import UserError
from chromaproxy.eval.color_metrics import (
    PSNR_CAP,
    ab_error_auc,
    auc_from_hits,
    binned_hits,
    psnr,
    psnr_per_image,
    saturation,
)
from conftest import REPO, data_root


def _ab(seed: int, shape=(2, 2, 4, 5), scale=40.0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def _naive_auc(pred_ab, true_ab, thresholds, weights=None) -> float:
    """Loop over pixels and thresholds, exactly as the definition reads."""
    errors = [math.dist(p, t) for p, t in zip(pred_ab.permute(0, 2, 3, 1).reshape(-1, 2).tolist(),
                                               true_ab.permute(0, 2, 3, 1).reshape(-1, 2).tolist())]
    w = [1.0] * len(errors) if weights is None else weights.flatten().tolist()
    fractions = [sum(wi for e, wi in zip(errors, w) if e <= t) / sum(w) for t in thresholds]
    return sum(fractions) / len(fractions)


def test_auc_matches_naive_reference():
    pred, true = _ab(0), _ab(1)
    weights = torch.rand(2, 4, 5, generator=torch.Generator().manual_seed(2))
    for thresholds in (range(0, 151), [0.0, 5.5, 20.0, 80.0]):
        assert ab_error_auc(pred, true, thresholds) == pytest.approx(_naive_auc(pred, true, thresholds))
        assert ab_error_auc(pred, true, thresholds, weights) == pytest.approx(_naive_auc(pred, true, thresholds, weights))


def test_auc_limits():
    true = _ab(3).round()  # integers: the shifted copy is exact in float32
    assert ab_error_auc(true, true) == 1.0
    shifted = true + torch.tensor([6.0, 8.0]).view(1, 2, 1, 1)  # error exactly 10 at every pixel
    assert ab_error_auc(shifted, true) == pytest.approx((151 - 10) / 151)
    assert ab_error_auc(true + 1000, true) == 0.0


def test_binned_hits_give_both_aucs_and_sum_over_batches():
    pred, true = _ab(4, (3, 2, 6, 6), 50), _ab(5, (3, 2, 6, 6), 50)
    centers = zhang_313_bins()
    w = rebalance_weights(torch.rand(313, generator=torch.Generator().manual_seed(6)))
    hits, pixels = binned_hits(pred, true, centers)
    assert pixels.sum() == 3 * 36 and hits.shape == (313, 151)
    assert auc_from_hits(hits, pixels) == pytest.approx(ab_error_auc(pred, true))
    pixel_w = w[nearest_bin(true, centers)]  # (B, H, W): w at the ground truth's nearest bin
    assert auc_from_hits(hits, pixels, w) == pytest.approx(_naive_auc(pred, true, range(151), pixel_w))
    parts = [binned_hits(pred[i : i + 1], true[i : i + 1], centers) for i in range(3)]
    assert torch.equal(sum(h for h, _ in parts), hits) and torch.equal(sum(p for _, p in parts), pixels)


def test_psnr_per_image_mean_and_cap():
    generator = torch.Generator().manual_seed(7)
    true = torch.rand(3, 3, 4, 4, generator=generator)
    pred = (true + 0.1 * torch.randn(3, 3, 4, 4, generator=generator)).clamp(0, 1)
    naive = [10 * math.log10(1 / ((p - t) ** 2).mean().item()) for p, t in zip(pred, true)]
    assert psnr(pred, true) == pytest.approx(sum(naive) / 3)
    assert psnr(true, true) == PSNR_CAP  # finite, so it can be written to JSON
    assert psnr_per_image(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).item() == pytest.approx(0.0)


def test_saturation():
    gray = torch.full((1, 3, 2, 2), 0.5)
    assert saturation(gray) == 0.0
    assert saturation(torch.zeros(1, 3, 2, 2)) == 0.0  # black: saturation 0, not nan
    pure = torch.zeros(1, 3, 2, 2)
    pure[:, 0] = 1.0
    assert saturation(pure) == 1.0
    mixed = torch.tensor([0.8, 0.4, 0.2]).view(1, 3, 1, 1)
    assert saturation(mixed) == pytest.approx((0.8 - 0.2) / 0.8)


@pytest.fixture(scope="module")
def colorization_run(tmp_path_factory):

    root = data_root()
    if not (root / "cifar10" / "data_batch_1").is_file():
        pytest.skip(f"CIFAR-10 not found under {root} (set CHROMAPROXY_DATA)")
    from chromaproxy.config import load_config
    from chromaproxy.engine.run_dir import open_run_dir
    from chromaproxy.engine.trainer import Trainer

    out = tmp_path_factory.mktemp("colorquality") / "run"
    cfg = load_config(REPO / "configs/colorization-cifar10.yaml", [
        f"data.root={root}", "data.limit=256", "model.blocks=3", "model.width=0.125", "train.batch_size=32",
        "train.max_steps=3", "eval.test_limit=100", "colorization.points=16", "colorization.hidden=32",
        "colorization.prior_images=256", f"out={out}",
    ])
    Trainer(cfg, open_run_dir(cfg)).fit()
    return out


def test_colorization_protocol_end_to_end(colorization_run):
    from chromaproxy.eval.evaluate import evaluate
    from chromaproxy.eval.session import open_run

    session = open_run(colorization_run, ["eval.test_limit=64", "eval.batch_size=40"])
    shown = io.StringIO()
    written = evaluate(session, ["colorization"], Console(file=shown, width=200))
    assert written["colorization_grid.png"] == colorization_run / "eval" / "colorization_grid.png"
    assert "colorization on the whole network (" in shown.getvalue() and "block1" not in shown.getvalue()
    results = json.loads(written["colorization"].read_text())
    records = {r["metric"]: r for r in results["results"]}
    assert set(records) == {"auc", "auc_rebalanced", "psnr", "saturation_predicted", "saturation_truth"}
    assert all(r["tap"] is None and r["decode"] == "annealed" and r["temperature"] == 0.38 for r in records.values())
    assert 0 <= records["auc"]["value"] <= 1 and 0 <= records["auc_rebalanced"]["value"] <= 1
    assert records["auc_rebalanced"]["prior"] == "test"
    assert records["auc"]["weights"] == "checkpoints/last.safetensors"
    assert 0 < records["psnr"]["value"] <= PSNR_CAP
    assert 0 <= records["saturation_predicted"]["value"] <= 1 and 0 <= records["saturation_truth"]["value"] <= 1
    assert results["manifest"]["options"]["rebalance_prior"] == "test"
    assert results["manifest"]["splits"]["test"] == 64
    assert (colorization_run / "eval" / "colorization_grid.png").stat().st_size > 0


def test_colorization_protocol_run_prior_and_mode(colorization_run):
    from chromaproxy.eval.protocols.colorization import run
    from chromaproxy.eval.session import open_run

    session = open_run(colorization_run, ["eval.test_limit=16", "colorquality.rebalance_prior=run",
                                          "colorquality.decode=mode", "colorquality.grid_images=0"])
    records = {r["metric"]: r for r in run(session, session.cfg.colorquality)}
    assert records["auc_rebalanced"]["prior"] == "run" and records["auc"]["decode"] == "mode"
    assert 0 <= records["auc_rebalanced"]["value"] <= 1


def test_colorization_protocol_needs_the_task(tmp_path, colorization_run):
    from chromaproxy.eval.protocols.colorization import run
    from chromaproxy.eval.session import open_run

    session = open_run(colorization_run, ["eval.test_limit=8"])
    session.cfg.tasks = ["rotation"]
    with pytest.raises(UserError, match="tasks=\\[colorization\\]"):
        run(session, session.cfg.colorquality)
