"""``chromaproxy pretrain`` as torchrun starts it, plus what tests/test_distributed.py needs to look inside.

Run as ``torchrun … tests/ddp_worker.py [pretrain arguments]`` or, for the single-process reference, with
plain ``python``. It adds ``plainconv``, a backbone without BatchNorm (gloo has no SyncBatchNorm, so only
such a model trains identically on one process and on several), writes each rank's final weights to
``<out>/rank<r>.safetensors``, and with ``CRASH_RANK=r CRASH_STEP=s`` kills rank ``r`` abruptly once it has
done ``s`` steps (as an out-of-memory kill would); with ``SIGTERM_STEP=s`` rank 0 sends SIGTERM to torchrun
itself once it has done ``s`` steps, as a cluster scheduler would, and torchrun forwards it to every rank.
With ``STAGE_MARKS=DIR`` a rank that recolorizes the training images (Color-S4L) leaves
``DIR/recolorize-rank<r>`` and one that trains SEC's cue network ``DIR/cues-rank<r>``; each rank's dump holds
the recolorized images it trained on (``data.recolorized``) or, for SEC, its packed images (``data.images``).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from chromaproxy.cli import main
from chromaproxy.engine.trainer import Trainer
from chromaproxy.inference import recolorize as recolorize_module
from chromaproxy.models import BACKBONES
from chromaproxy.models.base import Backbone, TapInfo
from chromaproxy.segment import cue_stage
from chromaproxy.segment.sec_data import trains_on_cues

RANK = int(os.environ.get("RANK", "0"))


class PlainConv(Backbone):
    """Two conv + ReLU stages, no normalisation: its gradients do not depend on how a batch is split."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.stages = nn.ModuleDict({
            "block1": nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            "block2": nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        })
        self.feature_info = [TapInfo("block1", 8, 2), TapInfo("block2", 16, 4)]


def fit_and_dump(trainer: Trainer) -> dict:
    test = original_fit(trainer)
    state = {k: v.contiguous() for k, v in trainer.network.state_dict().items()}
    if trainer.data.train.recolorized is not None:
        state["data.recolorized"] = trainer.data.train.recolorized.contiguous()
    if trains_on_cues(trainer.cfg):
        state["data.images"] = trainer.data.train.images.contiguous()
    save_file(state, str(Path(trainer.run) / f"rank{RANK}.safetensors"))
    return test


def step_or_crash(trainer: Trainer, inputs):
    if str(RANK) == os.environ.get("CRASH_RANK") and trainer.step == int(os.environ["CRASH_STEP"]):
        os._exit(1)
    if RANK == 0 and trainer.step == int(os.environ.get("SIGTERM_STEP", -1)):
        os.kill(os.getppid(), signal.SIGTERM)
    return original_step(trainer, inputs)


def marked(stage: str, original):
    def run(*args, **kwargs):
        if "STAGE_MARKS" in os.environ:
            (Path(os.environ["STAGE_MARKS"]) / f"{stage}-rank{RANK}").touch()
        return original(*args, **kwargs)
    return run


BACKBONES["plainconv"] = lambda in_channels, width, blocks: PlainConv(in_channels)
original_fit, original_step = Trainer.fit, Trainer._train_step
recolorize_module.recolorize = marked("recolorize", recolorize_module.recolorize)
cue_stage.train_cue_network = marked("cues", cue_stage.train_cue_network)
Trainer.fit = fit_and_dump
Trainer._train_step = step_or_crash

if __name__ == "__main__":
    main()
