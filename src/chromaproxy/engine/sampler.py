"""Data order: a pure function of (seed, epoch), so a resumed run replays exactly the same batches."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from chromaproxy.errors import UserError


class EpochSampler:
    """Shuffles ``pool`` (indices into the training images) once per epoch and cuts it into batches.

    The permutation of epoch ``e`` comes from a generator seeded with ``(seed, e)``; nothing else is
    needed to restart mid-epoch than the epoch and the position in it. The last incomplete batch is
    dropped so every step sees the same batch size (BatchNorm statistics, exact resume).

    Under DDP every rank draws the same permutation and cuts the same global batches of ``batch_size``;
    rank ``r`` of ``world_size`` keeps the ``r``-th equal share of each. The union over ranks of step
    ``t`` is therefore exactly the single-process batch of step ``t``, whatever the number of processes.
    """

    def __init__(self, pool: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if len(pool) < batch_size:
            raise UserError(
                f"train.batch_size={batch_size} is larger than the {len(pool)} training images; "
                "lower train.batch_size or raise data.limit"
            )
        self.pool = pool
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.share = batch_size // world_size

    @property
    def steps_per_epoch(self) -> int:
        return len(self.pool) // self.batch_size

    def order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return self.pool[torch.randperm(len(self.pool), generator=generator)]

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        """This rank's share of the index batches of ``epoch``, from batch number ``start`` on."""
        order = self.order(epoch)
        for step in range(start, self.steps_per_epoch):
            first = step * self.batch_size + self.rank * self.share
            yield order[first : first + self.share]


class RepeatingSampler:
    """The labeled batches of a semi-supervised run (``train.labeled_batch_size``): one batch per step,
    cut from an endless stream of permutations of ``pool``, so a small labeled set repeats as often as
    the unlabeled epochs need (1000 labels at batch 128: a new pass every 7.8 steps).

    Batch ``t`` is stream positions ``[t·B, (t+1)·B)``; permutation ``c`` of the stream comes from the
    seed ``(seed, c)`` with its own offset, so the batch of a step is a pure function of (seed, step)
    (exact resume) and independent of the unlabeled order. A batch larger than the pool spans several
    permutations. Ranks keep their equal share of each global batch, as in ``EpochSampler``.
    """

    SEED_OFFSET = 104_729  # keeps the labeled stream apart from EpochSampler's epoch permutations

    def __init__(self, pool: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if len(pool) == 0:
            raise UserError("train.labeled_batch_size is set but the training images have no labels; "
                            "unset it, or train on a labeled dataset")
        self.pool = pool
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.share = batch_size // world_size

    def _permutation(self, cycle: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed((self.seed + self.SEED_OFFSET) * 1_000_003 + cycle)
        return self.pool[torch.randperm(len(self.pool), generator=generator)]

    def batch(self, step: int) -> torch.Tensor:
        """This rank's share of the labeled batch of global step ``step``."""
        first = step * self.batch_size + self.rank * self.share
        last = first + self.share
        size = len(self.pool)
        cycles = range(first // size, (last - 1) // size + 1)
        stream = torch.cat([self._permutation(c) for c in cycles])
        offset = cycles[0] * size
        return stream[first - offset : last - offset]
