"""Transitive invariance end to end at toy scale, as a user types it: mine two DAVIS sequences, pretrain a
few steps on the graph, evaluate kNN and instance retrieval; and the one-line errors on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from chromaproxy.cli import app
from chromaproxy.errors import UserError
from conftest import REPO, data_root, single_thread

PRESET = REPO / "configs" / "transitive-davis-quick.yaml"
TINY = ["model.blocks=3", "model.width=0.125", "transitive.hidden=32", "transitive.dim=16"]


def _cli(*args):
    """A subprocess, where the one-line error of ``main`` must be seen as a user sees it."""
    env = dict(os.environ, OMP_NUM_THREADS="1", CHROMAPROXY_DATA=str(data_root()))
    return subprocess.run([sys.executable, "-m", "chromaproxy", *map(str, args)], env=env, capture_output=True, text=True)


def _in_process(*args):
    """The same commands in this process (no interpreter start-up per command)."""
    with single_thread():
        return CliRunner().invoke(app, list(map(str, args)), env={"CHROMAPROXY_DATA": str(data_root())})


@pytest.fixture
def davis(tmp_path):
    root = data_root() / "davis2016_val"
    if not (root / "frames" / "parkour").is_dir():
        pytest.skip("davis2016_val not found")
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("parkour", "car-shadow"):
        (videos / name).symlink_to(root / "frames" / name)
    return videos


def test_mine_pretrain_evaluate(davis, tmp_path):
    graph, run = tmp_path / "graph", tmp_path / "run"
    mined = _in_process("mine", PRESET, f"mine.videos={davis}", "mine.propose_every=6", "mine.clusters=4",
                        "mine.min_cluster=5", *TINY, f"out={graph}")
    assert mined.exit_code == 0, mined.output
    summary = json.loads((graph / "graph.json").read_text())
    assert summary["tracker"] == "KCF" and all(summary["edges"][k] > 0 for k in ("intra", "inter", "transitive"))
    assert (graph / "edges.png").is_file()
    trained = _in_process("pretrain", PRESET, f"graph={graph}", *TINY, "train.max_steps=3", "train.batch_size=8", f"out={run}")
    assert trained.exit_code == 0, trained.output
    evaluated = _in_process("evaluate", run, "--protocol", "knn,retrieval", "eval.train_limit=100", "eval.test_limit=50",
                            "retrieval.sequences=[blackswan,dog]", "retrieval.frame_step=10", "knn.ks=[5]")
    assert evaluated.exit_code == 0, evaluated.output
    records = json.loads((run / "eval" / "retrieval.json").read_text())["results"]
    assert {r["k"] for r in records} == {1, 5, 10} and all(0 <= r["value"] <= 1 for r in records)
    assert len({r["tap"] for r in records}) == 3


def test_a_corrupt_video_stops_mine_with_one_line_naming_it(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "broken.avi").write_bytes(b"RIFF garbage" * 20)
    result = _cli("mine", PRESET, f"mine.videos={tmp_path / 'videos'}", f"out={tmp_path / 'g'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "broken.avi" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_pretrain_without_a_graph_says_how_to_mine_one(tmp_path):
    result = _in_process("pretrain", PRESET, f"out={tmp_path / 'run'}")
    assert isinstance(result.exception, UserError)
    assert "graph=DIR" in str(result.exception) and "chromaproxy mine" in str(result.exception)
