"""Multi-process training: torchrun with 2 CPU processes on gloo, driven through the real command line.

``tests/ddp_worker.py`` is chromaproxy's own entry point plus a BatchNorm-free backbone and a way to read
each rank's final weights. The no-BN model must follow the same loss trajectory on 2 processes as on one
with the same global batch (gloo has no SyncBatchNorm, so a BN model normalises each rank's half batch on
its own and may not); every model must end with identical weights on both ranks; a rank that dies ends
the whole job with a clear message; and the stopped job resumes to exactly the uninterrupted result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from chromaproxy import cli
from chromaproxy.config import load_config
from chromaproxy.engine import distributed
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.trainer import Trainer
from conftest import REPO, data_root, single_thread, tiny_overrides

WORKER = REPO / "tests" / "ddp_worker.py"
PRESET = REPO / "configs" / "supervised-cifar10-quick.yaml"
DETERMINISTIC = {  # no augmentation, so the two processes see exactly the images one process sees
    "augment.crop_padding": 0, "augment.hflip": "false", "train.max_steps": 8, "train.log_every": 1,
    "train.checkpoint_every": 4, "eval.test_limit": 64, "data.limit": 512,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pretrain(root: Path, out: Path, *, processes: int, env: dict | None = None, **extra) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=N tests/ddp_worker.py pretrain …`` (plain python for one process)."""
    launcher = [sys.executable, str(WORKER)]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                    "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(WORKER)]
    args = ["pretrain", str(PRESET), *tiny_overrides(root, out, **{**DETERMINISTIC, **extra})]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([*launcher, *args], capture_output=True, text=True, timeout=300, env=environment)


def losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "split" not in r]


def rank_weights(run: Path, rank: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / f"rank{rank}.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[0]}"


def test_two_processes_follow_the_single_process_loss_trajectory(cifar_root, tmp_path):
    plain = {"model.name": "plainconv"}
    fp32 = {"CHROMAPROXY_PRECISION": "fp32"}  # bf16 sums a 32-image batch differently from two of 16: 1e-3 apart
    single = pretrain(cifar_root, tmp_path / "one", processes=1, env=fp32, **plain)
    assert single.returncode == 0, single.stderr
    double = pretrain(cifar_root, tmp_path / "two", processes=2, env=fp32, **plain)
    assert double.returncode == 0, double.stderr

    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 8
    assert one[-1] < one[0], "the reference run must actually learn for the comparison to mean something"
    assert torch.allclose(torch.tensor(two), torch.tensor(one), rtol=1e-4, atol=1e-5), (one, two)
    assert_same_weights(rank_weights(tmp_path / "two", 0), rank_weights(tmp_path / "two", 1))
    final_one, final_two = rank_weights(tmp_path / "one", 0), rank_weights(tmp_path / "two", 0)
    assert all(torch.allclose(final_one[k], final_two[k], rtol=1e-3, atol=1e-5) for k in final_one)
    assert "2 processes, 16 images each per step" in double.stderr
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "checkpoints", "config.yaml", "metrics.jsonl", "rank0.safetensors", "rank1.safetensors", "splits.json"
    ]


def test_a_semi_supervised_run_on_two_processes_follows_the_single_process_losses(cifar_root, tmp_path):
    """Both batches split over the ranks: the labeled one (train.labeled_batch_size) as the unlabeled one.
    ``flips.all_transforms`` makes the proxy labels deterministic, so the two jobs compute the same thing."""
    semi = {"model.name": "plainconv", "tasks": "[supervised,flips]", "task_weights": "[1,1]",
            "flips.all_transforms": "true", "data.labels_per_class": 5, "train.labeled_batch_size": 16}
    single = pretrain(cifar_root, tmp_path / "one", processes=1, **semi)
    assert single.returncode == 0, single.stderr
    double = pretrain(cifar_root, tmp_path / "two", processes=2, **semi)
    assert double.returncode == 0, double.stderr
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 8 and len(set(one)) == 8  # every step's loss differs: the comparison has teeth
    assert torch.allclose(torch.tensor(two), torch.tensor(one), rtol=1e-4, atol=1e-5), (one, two)
    assert_same_weights(rank_weights(tmp_path / "two", 0), rank_weights(tmp_path / "two", 1))


def test_color_s4l_on_two_processes_recolorizes_on_rank_0_only_and_every_rank_trains_on_its_images(cifar_root, tmp_path):
    cfg = load_config(REPO / "configs" / "colorization-cifar10-quick.yaml",
                      tiny_overrides(cifar_root, tmp_path / "colorizer", **{"train.max_steps": 2, "eval.test_limit": 32}))
    with single_thread():
        Trainer(cfg, open_run_dir(cfg)).fit()
    marks = tmp_path / "marks"
    marks.mkdir()
    s4l = {"model.name": "plainconv", "tasks": "[supervised,flips]", "task_weights": "[1,1]", "flips.recolorized": "true",
           "colorizer": str(tmp_path / "colorizer"), "data.labels_per_class": 5, "train.labeled_batch_size": 16}
    double = pretrain(cifar_root, tmp_path / "two", processes=2, env={"STAGE_MARKS": str(marks)}, **s4l)
    assert double.returncode == 0, double.stderr
    assert sorted(p.name for p in marks.iterdir()) == ["recolorize-rank0"]
    first, second = rank_weights(tmp_path / "two", 0), rank_weights(tmp_path / "two", 1)
    assert first["data.recolorized"].shape == (512, 3, 32, 32)
    assert_same_weights(first, second)
    assert (tmp_path / "two" / "recolorized.safetensors").is_file()


def test_sec_on_two_processes_trains_the_cue_network_on_rank_0_only_and_every_rank_gets_its_cues(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    sec = {"tasks": "[sec]", "task_weights": "[1]", "data.name": "pets3", "data.root": str(data_root()),
           "data.limit": 32, "data.image_size": 32, "augment.color_jitter": "[0,0,0,0]", "augment.grayscale_p": 0,
           "sec.hidden": 16, "sec.dilation": 2, "sec.cue_epochs": 1, "sec.crf_scale": 30, "train.max_steps": 2}
    double = pretrain(tmp_path, tmp_path / "two", processes=2, env={"STAGE_MARKS": str(marks)}, **sec)
    assert double.returncode == 0, double.stderr
    assert sorted(p.name for p in marks.iterdir()) == ["cues-rank0"]
    first, second = rank_weights(tmp_path / "two", 0), rank_weights(tmp_path / "two", 1)
    assert first["data.images"].shape == (32, 3, 64, 32)  # each photo with its cue map packed below it
    assert_same_weights(first, second)


def test_an_image_model_without_a_backbone_trains_the_same_on_two_processes(cifar_root, tmp_path):
    """The pyramid PixelCNN owns every network it trains (model.name=pixels): DDP must sync them all."""
    from conftest import TASK_REQUIRED

    pyramid = {**TASK_REQUIRED["pyramid_pixelcnn"], "tasks": "[pyramid_pixelcnn]", "task_weights": "[1]",
               "pyramid_pixelcnn.dropout": 0.0, "train.optimizer": "adam", "train.lr": 0.001}
    single = pretrain(cifar_root, tmp_path / "one", processes=1, **pyramid)
    assert single.returncode == 0, single.stderr
    double = pretrain(cifar_root, tmp_path / "two", processes=2, **pyramid)
    assert double.returncode == 0, double.stderr
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 8 and one[-1] < one[0]
    assert torch.allclose(torch.tensor(two), torch.tensor(one), rtol=1e-4, atol=1e-5), (one, two)
    assert_same_weights(rank_weights(tmp_path / "two", 0), rank_weights(tmp_path / "two", 1))


def test_batchnorm_model_keeps_identical_weights_on_every_rank(cifar_root, tmp_path):
    done = pretrain(cifar_root, tmp_path / "nin", processes=2, **{"augment.crop_padding": 4, "augment.hflip": "true"})
    assert done.returncode == 0, done.stderr
    assert_same_weights(rank_weights(tmp_path / "nin", 0), rank_weights(tmp_path / "nin", 1))
    assert "done:" in done.stdout and losses(tmp_path / "nin")[-1] < losses(tmp_path / "nin")[0]


def test_a_dead_rank_ends_the_job_clearly_and_the_job_resumes_exactly(cifar_root, tmp_path):
    reference = pretrain(cifar_root, tmp_path / "reference", processes=2)
    assert reference.returncode == 0, reference.stderr

    # Rank 1 dies after step 6: it got through step 5's all-reduce, so rank 0 had finished the step-4 checkpoint.
    crashed = pretrain(cifar_root, tmp_path / "crashed", processes=2, env={"CRASH_RANK": "1", "CRASH_STEP": "6"})
    assert crashed.returncode != 0
    assert "[rank 0] error: another process of this job stopped" in crashed.stderr, crashed.stderr
    assert "torchrun --nproc_per_node=2 -m chromaproxy pretrain" in crashed.stderr
    assert "[rank0]: Traceback" not in crashed.stderr, "torchrun's SIGTERM after the message must end rank 0 quietly"
    last = json.loads((tmp_path / "crashed/checkpoints/last.json").read_text())
    assert last["step"] == 4 and last["world_size"] == 2

    shutil.copytree(tmp_path / "crashed", tmp_path / "alone")
    resumed = pretrain(cifar_root, tmp_path / "crashed", processes=2, resume="true")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stderr
    for rank in (0, 1):
        assert_same_weights(rank_weights(tmp_path / "reference", rank), rank_weights(tmp_path / "crashed", rank))

    alone = pretrain(cifar_root, tmp_path / "alone", processes=1, resume="true")
    assert alone.returncode == 0, alone.stderr
    assert "trained by 2 process(es), now 1" in alone.stderr and "resumed" in alone.stderr
    assert json.loads((tmp_path / "alone/checkpoints/last.json").read_text())["step"] == 8


def test_sigterm_to_torchrun_stops_every_rank_at_the_same_step_with_a_checkpoint(cifar_root, tmp_path):
    # torchrun forwards the SIGTERM to both ranks; they agree to stop at the next agreement step (10).
    stopped = pretrain(cifar_root, tmp_path / "run", processes=2, env={"SIGTERM_STEP": "3"}, **{"train.max_steps": 20})
    assert stopped.returncode != 0
    assert "stopped by SIGTERM at step 10; the checkpoint is written. Continue with:" in stopped.stderr, stopped.stderr
    assert "[rank0]: Traceback" not in stopped.stderr and "[rank1]: Traceback" not in stopped.stderr
    last = json.loads((tmp_path / "run/checkpoints/last.json").read_text())
    assert last["step"] == 10 and last["world_size"] == 2

    resumed = pretrain(cifar_root, tmp_path / "run", processes=2, resume="true", **{"train.max_steps": 20})
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run/checkpoints/last.json").read_text())["step"] == 20
    assert_same_weights(rank_weights(tmp_path / "run", 0), rank_weights(tmp_path / "run", 1))


def test_a_global_batch_that_does_not_split_is_a_one_line_error(cifar_root, tmp_path):
    odd = pretrain(cifar_root, tmp_path / "odd", processes=2, **{"train.batch_size": 33})
    assert odd.returncode != 0
    assert "train.batch_size=33 does not split evenly over 2 processes" in odd.stderr


def test_commands_other_than_pretrain_refuse_to_run_on_several_processes(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "-m", "chromaproxy", "evaluate", str(tmp_path), "--protocol", "knn"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode != 0
    # whichever rank prints first: torchrun stops the other one as soon as one has failed
    assert re.search(r"\[rank [01]\] error: only pretrain runs under torchrun; run 'chromaproxy evaluate' as one process",
                     result.stderr), result.stderr


def test_a_late_sigterm_while_the_lost_peer_is_reported_leaves_the_one_line_error(tmp_path):
    # Rank 0 often sees the broken collective before torchrun's SIGTERM arrives; the signal must not
    # raise PeerLost in the middle of the report (a traceback instead of the one line).
    class BrokenCollective:
        def fit(self):
            raise RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:29500")

    dist = distributed.Dist(rank=0, world_size=2)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        distributed.stop_with_the_job(dist)
        try:
            cli._fit(BrokenCollective(), dist, tmp_path, "resume")
        except cli.UserError as err:
            os.kill(os.getpid(), signal.SIGTERM)  # torchrun's SIGTERM, late: ignored while reporting
            assert "another process of this job stopped (Connection closed by peer" in str(err)
        else:
            raise AssertionError("a lost peer must end _fit with a UserError")
        distributed.shutdown()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
