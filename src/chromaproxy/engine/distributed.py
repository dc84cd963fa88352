"""Multi-process training under ``torchrun``: one process per device, PyTorch DDP, rank 0 writes.

``torchrun --nproc_per_node=N -m chromaproxy pretrain …`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them everything here degrades to the single-process case, so the trainer has one
code path. Every collective is guarded by ``Dist.enabled``; model code never calls ``torch.distributed``.
The backend follows the device: NCCL on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import datetime
import gc
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn

from chromaproxy.device import resolve_device
from chromaproxy.errors import UserError

TIMEOUT = datetime.timedelta(minutes=10)  # a peer silent this long is treated as lost
STAGE_TIMEOUT = datetime.timedelta(hours=12)  # how long the ranks wait for a one-off stage rank 0 computes


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the job; ``Dist()`` is a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes the run directory, logs and checkpoints."""
        return self.rank == 0

    def local_batch(self, global_batch: int, key: str = "train.batch_size") -> int:
        """``key`` holds a global batch; each rank trains on an equal share of it."""
        if global_batch % self.world_size:
            raise UserError(
                f"{key}={global_batch} does not split evenly over {self.world_size} processes; "
                f"use a multiple of {self.world_size} (it is the global batch)"
            )
        return global_batch // self.world_size


def from_environment() -> Dist:
    """The job layout ``torchrun`` exported, or a single process when it did not run us."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        raise UserError("RANK / WORLD_SIZE / LOCAL_RANK are not integers; launch with torchrun, or unset them") from None


def setup(dist: Dist, device_name: str) -> torch.device:
    """This process's device, joining the process group first when the job has several ranks.

    Under torchrun, ``device=auto`` or ``cuda`` means ``cuda:LOCAL_RANK``: one GPU per process.
    """
    device = resolve_device(device_name)
    if device.type == "cuda" and dist.enabled and device.index is None:
        device = torch.device("cuda", dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if dist.enabled and not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch_dist.init_process_group(backend, rank=dist.rank, world_size=dist.world_size, timeout=TIMEOUT)
    return device


class PeerLost(RuntimeError):
    """Another process of the job failed and the launcher is stopping this one."""


def stop_with_the_job(dist: Dist) -> None:
    """When a rank fails, torchrun sends SIGTERM to the others: turn it into ``PeerLost`` so they end with
    one line instead of dying silently mid-step."""
    if dist.enabled:
        signal.signal(signal.SIGTERM, _raise_peer_lost)


def _raise_peer_lost(signum: int, frame: object) -> None:
    raise PeerLost("torchrun stopped this process")


@contextmanager
def sigterm_held_once_failed(dist: Dist) -> Iterator[None]:
    """Training inside: if it ends by any exception, SIGTERM is ignored from that moment on. The job's
    end is decided then, and torchrun's SIGTERM (sent when it sees another rank end) has nothing left to
    stop; arriving while the error is being turned into its one line, it would raise ``PeerLost`` inside
    that report and print a traceback instead. ``shutdown`` restores the default."""
    try:
        yield
    except BaseException:
        if dist.enabled:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise


def lost_peer(err: BaseException, dist: Dist) -> bool:
    """Whether ``err`` means that another rank died: the launcher's SIGTERM or a broken collective."""
    if not dist.enabled:
        return False
    text = str(err)
    return isinstance(err, (PeerLost, torch_dist.DistError)) or any(w in text for w in ("gloo", "NCCL", "Connection"))


def shutdown() -> None:
    """Leave the process group once nothing uses it any more.

    DDP's reducer holds the group, and DDP sits in reference cycles; left for the interpreter's exit, the
    group is destroyed mid-teardown and gloo aborts the process (``terminate called without an active
    exception``, about one finished job in three). Collecting first frees them while Python still runs.
    The job's outcome is already reported, so a late SIGTERM from torchrun now just ends the process.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if torch_dist.is_initialized():
        gc.collect()
        torch_dist.destroy_process_group()


def wrap(network: nn.Module, dist: Dist, device: torch.device, find_unused: bool) -> nn.Module:
    """DDP around ``network`` (gradients averaged over ranks in backward); the network itself alone.

    On CUDA, BatchNorm becomes SyncBatchNorm so its statistics cover the global batch; gloo has no
    SyncBatchNorm, so on the CPU each rank normalises with its own share of the batch. ``find_unused``
    is needed when some parameters never take part in the loss (stages past every task's deepest tap).
    """
    if not dist.enabled:
        return network
    if device.type == "cuda":
        network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(network, device_ids=ids, find_unused_parameters=find_unused)


def all_reduce_sum(tensor: torch.Tensor, dist: Dist) -> torch.Tensor:
    """The sum of ``tensor`` over ranks (in place), e.g. metric sums, so every rank logs the same means."""
    if dist.enabled:
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
    return tensor


def gather(tensor: torch.Tensor, dist: Dist, device: torch.device) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (same shape and dtype on all), in rank order, on the CPU.

    Used for the per-rank random states a checkpoint must hold for an exact resume.
    """
    if not dist.enabled:
        return [tensor]
    carrier = device if device.type == "cuda" else torch.device("cpu")  # NCCL moves CUDA tensors only
    local = tensor.to(carrier)
    parts = [torch.empty_like(local) for _ in range(dist.world_size)]
    torch_dist.all_gather(parts, local)
    return [part.cpu() for part in parts]


def broadcast_text(text: str | None, dist: Dist, device: torch.device) -> str:
    """Rank 0's ``text`` on every rank (e.g. the run directory, whose default name holds the time).

    Sent as bytes in a tensor rather than a pickled object: nothing is unpickled.
    """
    if not dist.enabled:
        return text or ""
    carrier = device if device.type == "cuda" else torch.device("cpu")
    payload = (text or "").encode("utf-8")
    size = torch.tensor([len(payload)], dtype=torch.int64, device=carrier)
    torch_dist.broadcast(size, src=0)
    data = torch.zeros(int(size.item()), dtype=torch.uint8, device=carrier)
    if dist.main:
        data.copy_(torch.tensor(list(payload), dtype=torch.uint8))
    torch_dist.broadcast(data, src=0)
    return bytes(data.cpu().tolist()).decode("utf-8")


def computed_on_main(compute: Callable[[], torch.Tensor], dist: Dist, dtype: torch.dtype) -> torch.Tensor:
    """``compute()`` (a CPU tensor of ``dtype``) run by rank 0 alone and handed to every rank.

    For a one-off stage each rank would otherwise repeat in full, such as Color-S4L's recolorized set:
    rank 0 alone reads and writes the run directory's cache, so without this every other rank recomputed
    it, on every resume too. The others wait on a gloo group of its own whose timeout is STAGE_TIMEOUT,
    not the job's TIMEOUT, which a long stage on rank 0 would outlast; gloo since the result is on the CPU
    whatever the training backend. If rank 0 fails instead, torchrun stops the waiting ranks.
    """
    if not dist.enabled:
        return compute()
    group = torch_dist.new_group(backend="gloo", timeout=STAGE_TIMEOUT)
    result = compute().contiguous() if dist.main else None
    ndim = torch.tensor([result.dim() if dist.main else 0])
    torch_dist.broadcast(ndim, src=0, group=group)
    shape = torch.tensor(result.shape if dist.main else [0] * int(ndim), dtype=torch.int64)
    torch_dist.broadcast(shape, src=0, group=group)
    if not dist.main:
        result = torch.empty(shape.tolist(), dtype=dtype)
    torch_dist.broadcast(result, src=0, group=group)
    torch_dist.destroy_process_group(group)
    return result


def sync_buffers(network: nn.Module, dist: Dist) -> None:
    """Rank 0's BatchNorm running statistics on every rank, so that evaluation and checkpoints agree.

    DDP broadcasts buffers at the start of each forward; the last training step still leaves each rank
    with statistics updated by its own share of the batch.
    """
    if dist.enabled:
        for buffer in network.buffers():
            torch_dist.broadcast(buffer, src=0)
