"""Stopping without losing work: SIGINT (Ctrl-C) and SIGTERM, and the time-based checkpoint.

SIGTERM is what a cluster scheduler sends before it kills a job, so it is treated like Ctrl-C: the
current step finishes, the checkpoint is written (atomically, every rank's state), the resume command is
printed and the process exits with the conventional status 128 + the signal's number. A second Ctrl-C
stops at once, keeping the last checkpoint on disk.

Alone, the request is acted on after the step it arrived in. Under torchrun every rank must stop, and
write a time-based checkpoint, at the same step (the checkpoint gathers every rank's random state), so
the ranks agree with one small all-reduce every ``AGREE_EVERY`` steps rather than after every step: a
per-step agreement would synchronise the GPU with the host on every step. Ten steps stay well inside
torchrun's grace period between its SIGTERM and its SIGKILL.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

import torch
import torch.distributed as torch_dist

from chromaproxy.engine.distributed import Dist

AGREE_EVERY = 10  # steps between the ranks' agreements under torchrun
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """A signal asked the run to stop; the checkpoint of ``step`` is written."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"{signal.Signals(signum).name} at step {step}")
        self.signum, self.step = signum, step

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class Stopper:
    """Catches SIGINT/SIGTERM while a run trains and says, after each step, whether to checkpoint and stop."""

    def __init__(self, dist: Dist, device: torch.device, checkpoint_minutes: float) -> None:
        self.dist, self.device = dist, device
        self.interval_s = checkpoint_minutes * 60 if checkpoint_minutes > 0 else float("inf")
        self.signum: int | None = None
        self.last_checkpoint = time.monotonic()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Stopper":
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self._previous = {signum: signal.signal(signum, self._request) for signum in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _request(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait for the step
        self.signum = signum

    def poll(self, step: int) -> tuple[int | None, bool]:
        """After ``step``: the signal to stop for (or None) and whether a time-based checkpoint is due."""
        due = time.monotonic() - self.last_checkpoint >= self.interval_s
        if not self.dist.enabled:
            return self.signum, due
        if step % AGREE_EVERY:
            return None, False
        flags = torch.tensor([self.signum or 0, int(due)], device=self.device)
        torch_dist.all_reduce(flags, op=torch_dist.ReduceOp.MAX)
        signum, due = (int(v) for v in flags.tolist())
        return signum or None, bool(due)

    def checkpointed(self) -> None:
        self.last_checkpoint = time.monotonic()
