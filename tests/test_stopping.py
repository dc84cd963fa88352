"""Ctrl-C and SIGTERM finish the step, write the checkpoint and say how to go on; resuming then ends with
exactly the weights of an uninterrupted run. A time-based checkpoint covers long epochs."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch

from chromaproxy.checkpoint import load_checkpoint, read_meta
from chromaproxy.config import load_config
from chromaproxy.engine import stopping
from chromaproxy.engine.distributed import Dist
from chromaproxy.engine.run_dir import open_run_dir
from chromaproxy.engine.stopping import Stopper, StopRequested
from chromaproxy.engine.trainer import Trainer
from conftest import REPO, tiny_overrides

PRESET = REPO / "configs/supervised-cifar10-quick.yaml"
STEPS = {"train.max_steps": 12, "train.log_every": 1}


def _trainer(root, out, **extra):
    cfg = load_config(PRESET, tiny_overrides(root, out, **{**STEPS, **extra}))
    return Trainer(cfg, open_run_dir(cfg))


def _weights(run):
    return load_checkpoint(run / "checkpoints/last.safetensors", "model.")


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_mid_epoch_checkpoints_that_step_and_resumes_exactly(cifar_root, tmp_path, one_thread, monkeypatch):
    _trainer(cifar_root, tmp_path / "reference").fit()

    stopped = _trainer(cifar_root, tmp_path / "stopped")
    step = stopped._train_step

    def signalled_step(*args):
        outputs = step(*args)
        if stopped.step == 4:  # the signal lands while step 5 computes
            os.kill(os.getpid(), signal.SIGTERM)
        return outputs

    monkeypatch.setattr(stopped, "_train_step", signalled_step)
    with pytest.raises(StopRequested) as caught:
        stopped.fit()
    assert caught.value.step == 5 and caught.value.exit_status == 128 + signal.SIGTERM
    assert read_meta(tmp_path / "stopped/checkpoints/last.safetensors")["step"] == 5
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler outlives the run"

    _trainer(cifar_root, tmp_path / "stopped", resume=True).fit()
    assert _same(_weights(tmp_path / "reference"), _weights(tmp_path / "stopped"))


def _cli_pretrain(root, out, *extra):
    env = {**os.environ, "CHROMAPROXY_DATA": str(root), "OMP_NUM_THREADS": "1"}
    args = tiny_overrides(root, out, **{"train.max_steps": 60, "train.log_every": 1})
    command = [sys.executable, "-m", "chromaproxy", "pretrain", str(PRESET), *args, *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _signal_after_first_record(process, run, signum):
    metrics = run / "metrics.jsonl"
    while process.poll() is None and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.01)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_command_line_stops_with_the_conventional_status_and_a_resume_that_works(cifar_root, tmp_path, signum):
    run = tmp_path / "run"
    status, stderr = _signal_after_first_record(_cli_pretrain(cifar_root, run), run, signum)
    assert status == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert f"stopped by {signal.Signals(signum).name} at step" in stderr
    stopped_at = read_meta(run / "checkpoints/last.safetensors")["step"]
    assert 0 < stopped_at < 60
    command = re.search(r"Continue with: (.+)$", stderr.strip()).group(1)
    assert command == f"chromaproxy pretrain {run}/config.yaml resume=true"

    env = {**os.environ, "CHROMAPROXY_DATA": str(cifar_root), "OMP_NUM_THREADS": "1"}
    resumed = subprocess.run([sys.executable, "-m", *shlex.split(command)], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {run} at step {stopped_at}/60" in resumed.stdout + resumed.stderr
    assert json.loads((run / "checkpoints/last.json").read_text())["step"] == 60


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_time_based_checkpoint_comes_every_checkpoint_minutes(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(stopping.time, "monotonic", clock)
    stopper = Stopper(Dist(), torch.device("cpu"), checkpoint_minutes=2)
    clock.now += 119
    assert stopper.poll(1) == (None, False)
    clock.now += 1
    assert stopper.poll(2) == (None, True)
    stopper.checkpointed()
    clock.now += 60
    assert stopper.poll(3) == (None, False)
    assert Stopper(Dist(), torch.device("cpu"), checkpoint_minutes=0).poll(1) == (None, False)


def test_a_second_ctrl_c_stops_at_once():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job, Python's handler otherwise
    with Stopper(Dist(), torch.device("cpu"), checkpoint_minutes=5) as stopper:
        os.kill(os.getpid(), signal.SIGINT)
        assert stopper.poll(1) == (signal.SIGINT, False)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
