"""The segmentation transfer protocol: heads on every input representation, a frozen backbone stays frozen,
the session's backbone is never touched, and ``evaluate --random`` writes the results contract end to end
on a VOC 2012 layout written here."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from chromaproxy.cli import app
from chromaproxy.config import load_config
from chromaproxy.eval.protocols.segmentation import build_segmenter, score_confusion, train_segmenter
from chromaproxy.eval.session import EvalSession
from chromaproxy.network import Network
from chromaproxy.protocol_options import SegOptions
from chromaproxy.segment.sources import load_voc
from conftest import REPO
from test_segment_data import write_voc

TINY_MODEL = ["model.width=0.125", "model.blocks=3"]
QUICK = dict(epochs=2, batch_size=2, crop=32, hidden=8, dilation=2, test_scale=0.5)


def _session(overrides: list[str]) -> EvalSession:
    cfg = load_config(REPO / "configs/supervised-cifar10-quick.yaml", TINY_MODEL + overrides)
    torch.manual_seed(0)
    network = Network.backbone_only(cfg).eval()
    return EvalSession(REPO, cfg, network, torch.device("cpu"), None, None, [], "random (seed 0)")


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(("kind", "head"), [("rgb", "largefov"), ("L", "hypercolumn"), ("sobel", "largefov")])
def test_heads_score_every_class_at_the_input_representation(one_thread, kind, head):
    session = _session([f"model.input={kind}"])
    model, tap = build_segmenter(session, SegOptions(head=head, **QUICK), 21)
    scores = model(torch.rand(2, 3, 40, 48))
    assert scores.shape[:2] == (2, 21) and torch.isfinite(scores).all()
    assert (tap is None) == (head == "hypercolumn")
    first_conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert model.input.channels == first_conv.in_channels == {"rgb": 3, "L": 1, "sobel": 2}[kind]


@pytest.mark.parametrize("finetune", [False, True])
def test_training_moves_the_head_and_only_a_finetuned_copy_of_the_backbone(one_thread, tmp_path, finetune):
    write_voc(tmp_path)
    data = load_voc(tmp_path)
    session = _session([])
    original = _state(session.network.backbone)
    model, _ = build_segmenter(session, SegOptions(finetune=finetune, **QUICK), 21)
    backbone, head = _state(model.backbone), _state(model.head)
    train_segmenter(session, model, data.train, SegOptions(finetune=finetune, **QUICK))
    assert all(torch.equal(original[k], v) for k, v in _state(session.network.backbone).items())
    moved = [k for k, v in _state(model.backbone).items() if not torch.equal(backbone[k], v)]
    assert bool(moved) == finetune, "a frozen backbone changed (weights or BatchNorm statistics)" if moved else "fine-tuning left the backbone"
    assert any(not torch.equal(head[k], v) for k, v in _state(model.head).items())
    confusion, first = score_confusion(session, model, data.test, SegOptions(**QUICK), 21)
    assert first.shape == (1, 160, 160)
    assert confusion.sum() == int((data.test.masks != 255).sum())  # every scored pixel, none of the ignored


def test_an_unknown_largefov_tap_is_a_one_line_error():
    from chromaproxy.errors import UserError

    with pytest.raises(UserError, match="block9"):
        build_segmenter(_session([]), SegOptions(tap="block9", **QUICK), 4)
    _, tap = build_segmenter(_session([]), SegOptions(tap="block2", **QUICK), 4)
    assert tap == "block2"


def test_evaluate_random_writes_segmentation_json_with_its_own_dataset_in_the_manifest(one_thread, tmp_path):
    write_voc(tmp_path / "voc")
    out = tmp_path / "random"
    args = ["evaluate", "--random", str(REPO / "configs/supervised-cifar10-quick.yaml"), "--out", str(out),
            "--protocol", "segmentation,knn", "eval.train_limit=50", "eval.test_limit=20", "knn.ks=[1]", "seg.data=voc", f"seg.path={tmp_path / 'voc'}", "seg.head=hypercolumn",
            "seg.finetune=false", *TINY_MODEL, *(f"seg.{k}={v}" for k, v in QUICK.items())]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "segmentation on voc masks (hypercolumn head, frozen backbone)" in " ".join(result.output.split())
    knn = json.loads((out / "eval" / "knn.json").read_text())["manifest"]
    assert knn["dataset"] == "cifar10" and "classes" not in knn  # the segmentation manifest's keys stay its own
    content = json.loads((out / "eval" / "segmentation.json").read_text())
    head = content["manifest"]
    assert head["dataset"] == "voc" and head["splits"] == {"train": 2, "test": 1} and head["input"] == "rgb"
    assert head["options"]["head"] == "hypercolumn" and head["headline"] == {"metric": "miou"}
    assert len(head["classes"]) == 21 and head["weights"] == "random (seed 0)" and head["git_commit"] is not None
    assert (out / "eval" / "segmentation_grid.png").stat().st_size > 1000
    metrics = {r["metric"] for r in content["results"]}
    assert metrics == {"miou", "pixel_accuracy", "iou"}
    assert all(r["tap"] is None and r["taps"] == ["block1", "block2", "block3"] and 0 <= r["value"] <= 1 for r in content["results"])
    iou = {r["class"]: r["value"] for r in content["results"] if r["metric"] == "iou"}
    assert {"background", "cat"} <= iou.keys()  # the test photo's classes; others only where predicted, at IoU 0
    assert all(value == 0 for name, value in iou.items() if name not in ("background", "cat"))
