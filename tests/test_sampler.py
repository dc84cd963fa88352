import pytest
import torch

from chromaproxy.engine.sampler import EpochSampler
from chromaproxy.errors import UserError


def test_each_epoch_is_a_seeded_permutation_of_the_pool():
    pool = torch.arange(10, 110)
    sampler = EpochSampler(pool, batch_size=32, seed=3)
    batches = list(sampler.batches(epoch=0))
    assert len(batches) == sampler.steps_per_epoch == 3  # the last partial batch is dropped
    seen = torch.cat(batches)
    assert len(set(seen.tolist())) == 96 and set(seen.tolist()) <= set(pool.tolist())
    assert torch.equal(sampler.order(0), EpochSampler(pool, 32, seed=3).order(0))
    assert not torch.equal(sampler.order(0), sampler.order(1))
    assert not torch.equal(sampler.order(0), EpochSampler(pool, 32, seed=4).order(0))


def test_restarting_mid_epoch_replays_the_same_batches():
    sampler = EpochSampler(torch.arange(100), batch_size=10, seed=0)
    whole = list(sampler.batches(epoch=2))
    tail = list(sampler.batches(epoch=2, start=4))
    assert all(torch.equal(a, b) for a, b in zip(whole[4:], tail))


def test_batch_larger_than_the_data_is_a_clear_error():
    with pytest.raises(UserError, match="larger than the 5 training images"):
        EpochSampler(torch.arange(5), batch_size=8, seed=0)
