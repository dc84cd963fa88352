"""The SEC task end to end: its loss falls on a tiny packed batch, the seeding term reads cue pixels only,
the ablation switches choose the terms, the cue stage runs once per run (resume and ``sec.cues`` reuse it),
the segmentation protocol scores a SEC run's own output, and bad input is a one-line error."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from chromaproxy.cli import app
from chromaproxy.config import load_config, save_config
from chromaproxy.errors import UserError
from chromaproxy.network import Network
from chromaproxy.checkpoint import load_checkpoint
from chromaproxy.segment import cue_stage
from chromaproxy.segment.cue_network import init_from_cue_network, load_cue_network
from chromaproxy.segment.packing import pack, unpack
from chromaproxy.segment.sec import expansion_loss
from chromaproxy.segment.sec_data import sec_training_images
from conftest import REPO, data_root
from test_segment_data import write_voc

SIDE, K = 32, 4  # 32 px photos; background + 3 classes (pets3)
TINY = ["data.name=pets3", f"data.image_size={SIDE}", "augment.crop_padding=0", "model.width=0.125", "model.blocks=3",
        "sec.hidden=16", "sec.dilation=2", "sec.cue_epochs=1", "sec.crf_scale=30"]


def _packed(batch: int = 4) -> torch.Tensor:
    """Packed images (B, 3, 2S, S) in [0, 1]: random photos, class k's cue on a square, background cues on the border."""
    generator = torch.Generator().manual_seed(0)
    photos = torch.randint(0, 256, (batch, 3, SIDE, SIDE), dtype=torch.uint8, generator=generator)
    cues = torch.full((batch, SIDE, SIDE), 255, dtype=torch.uint8)
    cues[:, :4], labels = 0, torch.zeros(batch, K, dtype=torch.bool)
    for i in range(batch):
        k = 1 + i % (K - 1)
        cues[i, 12:20, 12:20], labels[i, [0, k]] = k, True
    return pack(photos, cues, labels).float() / 255


def _task(*overrides: str):
    cfg = load_config(None, ["tasks=[sec]", *TINY, *overrides])
    torch.manual_seed(0)
    network = Network.from_config(cfg, num_classes=K - 1)
    return network, network.tasks["sec"]


def test_packing_round_trips_and_a_flip_mirrors_cues_but_keeps_labels():
    rgb = _packed()
    photos, cues, labels = unpack(rgb, K)
    assert photos.shape == (4, 3, SIDE, SIDE) and labels[:, 0].all() and labels.sum(1).tolist() == [2, 2, 2, 2]
    _, flipped, flipped_labels = unpack(rgb.flip(-1), K)
    assert torch.equal(flipped, cues.flip(-1)) and torch.equal(flipped_labels, labels)


def test_the_loss_falls_on_a_tiny_packed_batch(one_thread):
    network, task = _task()
    inputs, targets = task.make_batch(_packed(), torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(0))
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-2)
    network.eval()  # no dropout: the same function at every step
    losses = []
    for _ in range(8):
        out = network.task_outputs("sec", inputs, targets)
        optimiser.zero_grad()
        out["loss"].backward()
        optimiser.step()
        losses.append(out["loss"].item())
    assert set(out) == {"loss", "seed", "expand", "constrain"}
    assert losses[-1] < losses[0] - 0.2, losses


def test_the_seeding_term_reads_cue_pixels_only(one_thread):
    _, task = _task("sec.losses=[seed]")
    _, targets = task.make_batch(_packed(), torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(0))
    scores = torch.randn(4, K, 8, 8, requires_grad=True)  # the head's output at stride 4
    task.scores = lambda features: scores
    task({}, targets)["loss"].backward()
    touched = scores.grad.abs().sum(1) > 0  # (B, 8, 8)
    expected = torch.zeros(4, 8, 8, dtype=torch.bool)
    expected[:, :1], expected[:, 3:5, 3:5] = True, True  # the border rows and the square, at 8x8
    assert torch.equal(touched, expected)


def test_ablation_switches_choose_the_terms_and_the_pooling(one_thread):
    outputs = {}
    for losses, pooling in [("[expand]", "gwrp"), ("[expand]", "gmp"), ("[seed,constrain]", "gwrp")]:
        network, task = _task(f"sec.losses={losses}", f"sec.pooling={pooling}")
        network.eval()
        with torch.no_grad():
            outputs[losses, pooling] = network.task_outputs("sec", *task.make_batch(_packed(), None, torch.Generator()))
    assert set(outputs["[expand]", "gwrp"]) == {"loss", "expand"}
    assert set(outputs["[seed,constrain]", "gwrp"]) == {"loss", "seed", "constrain"}
    network, task = _task("sec.losses=[expand]", "sec.pooling=gmp")
    with torch.no_grad():
        inputs, (labels, _, _) = task.make_batch(_packed(), None, torch.Generator())
        scores = task.scores(network.eval().backbone.forward_features(network.input(inputs), task.taps))
    probs = torch.softmax(scores, 1)
    assert outputs["[expand]", "gmp"]["expand"] == pytest.approx(expansion_loss(probs, labels, 0.0, 0.0).item(), rel=1e-5)
    assert outputs["[expand]", "gmp"]["expand"] != pytest.approx(outputs["[expand]", "gwrp"]["expand"].item())


def test_the_cue_stage_runs_once_and_resume_and_sec_cues_reuse_it(one_thread, tmp_path, monkeypatch):
    cfg = load_config(None, ["tasks=[sec]", *TINY, "data.limit=12"])
    calls = []
    train = cue_stage.train_cue_network
    monkeypatch.setattr(cue_stage, "train_cue_network", lambda *a, **k: calls.append(1) or train(*a, **k))
    monkeypatch.setenv("CHROMAPROXY_DATA", str(data_root()))
    first = sec_training_images(cfg, tmp_path / "a", torch.device("cpu"), progress=False)[2]
    assert len(calls) == 1 and (tmp_path / "a/sec/cues.safetensors").is_file()
    again = sec_training_images(cfg, tmp_path / "a", torch.device("cpu"), progress=False)[2]  # a resumed run
    assert len(calls) == 1 and torch.equal(first.images, again.images)
    (tmp_path / "a/sec/cues.safetensors").unlink()  # stopped after the cue network: it is not trained again
    sec_training_images(cfg, tmp_path / "a", torch.device("cpu"), progress=False)
    assert len(calls) == 1
    shared = load_config(None, ["tasks=[sec]", *TINY, "data.limit=12", f"sec.cues={tmp_path / 'a'}", "sec.losses=[expand]"])
    reused = sec_training_images(shared, tmp_path / "b", torch.device("cpu"), progress=False)[2]
    assert len(calls) == 1 and torch.equal(reused.images, first.images) and (tmp_path / "b/sec/cues.safetensors").is_file()
    save_config(shared, tmp_path / "b/config.yaml")  # what pretrain writes first
    network, _ = _task()
    init_from_cue_network(network.backbone, tmp_path / "b")  # sec.init=cues: the copied cue network's backbone
    cams, _, labels = load_cue_network(tmp_path / "b")(first.images[:2, :, :SIDE].float() / 255)
    assert cams.shape[:2] == labels.shape == (2, K) and labels[:, 0].all()
    saved = load_checkpoint(tmp_path / "b/sec/cue_network.safetensors", "backbone.")
    assert all(torch.equal(saved[k], v) for k, v in network.backbone.state_dict().items())
    other = load_config(None, ["tasks=[sec]", *TINY, "data.limit=12", f"sec.cues={tmp_path / 'a'}", "sec.fg_fraction=0.3"])
    with pytest.raises(UserError, match="holds no cues for these images"):
        sec_training_images(other, tmp_path / "c", torch.device("cpu"), progress=False)


def test_the_protocol_on_a_sec_run_scores_its_own_output_and_its_cues(one_thread, tmp_path):
    write_voc(tmp_path / "voc")
    run, runner = tmp_path / "run", CliRunner()
    common = ["data.name=voc", f"data.path={tmp_path / 'voc'}", *TINY[1:]]
    result = runner.invoke(app, ["pretrain", str(REPO / "configs/sec-pets3-quick.yaml"), f"out={run}", *common,
                                 "train.max_steps=2", "train.batch_size=2", "seg.data=voc", "seg.crf_grid=16"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(run), "--protocol", "segmentation", "seg.data=voc"])  # seg.path: the run's data.path
    assert result.exit_code == 0, result.output
    assert "the run's own SEC network" in " ".join(result.output.split())
    content = json.loads((run / "eval/segmentation.json").read_text())
    metrics = {r["metric"] for r in content["results"]}
    assert {"miou", "pixel_accuracy", "iou", "miou_crf", "cue_miou", "cue_coverage"} <= metrics
    assert all(r["tap"] is None and 0 <= r["value"] <= 1 for r in content["results"])
    assert content["manifest"]["segmenter"] == "the run's own SEC network"
    assert (run / "eval/segmentation_grid.png").stat().st_size > 1000
    result = runner.invoke(app, ["evaluate", str(run), "--protocol", "segmentation", "seg.data=pets3"])
    assert isinstance(result.exception, UserError) and "evaluate it with seg.data=voc" in str(result.exception)


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.name=cifar10"], "data.name=cifar10 has no masks"),
    (["data.name=camvid"], "needs class 0 to be background"),
    (["augment.crop_padding=4"], "augment.crop_padding=0"),
    (["sec.micro=/nonexistent/micro.json"], "/nonexistent/micro.json cannot be read"),
    (["data.image_size=16", "data.name=coco200"], "smaller than the 21 classes"),
])
def test_bad_input_is_a_one_line_error(tmp_path, overrides, message):
    result = CliRunner().invoke(app, ["pretrain", str(REPO / "configs/sec-pets3-quick.yaml"), f"out={tmp_path / 'run'}",
                                      *TINY, "sec.cue_epochs=1", *overrides])
    assert isinstance(result.exception, UserError), result.output  # the CLI prints it as one line, no traceback
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_empty_losses_are_an_error():
    with pytest.raises(UserError, match="sec.losses is empty"):
        _task("sec.losses=[]")
