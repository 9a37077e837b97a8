import pytest
import torch

from lightning_matchopt.data import (
    TrajectorySampler,
    epoch_generator,
    percentile_bins,
    sample_random_chains,
    sample_trajectories,
)
from lightning_matchopt.errors import ConfigError, DataError


@pytest.mark.parametrize("n,n_bins", [(1000, 128), (257, 16), (64, 64), (130, 2)])
def test_trajectories_are_monotone_one_point_per_bin_and_cover_bins(n, n_bins):
    y = torch.randn(n).round(decimals=1)  # ties across bin edges must not break monotonicity
    members, sizes = percentile_bins(y, n_bins)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    bin_of = torch.empty(n, dtype=torch.long)
    for b in range(n_bins):
        bin_of[members[b, : sizes[b]]] = b
    traj = sample_trajectories(members, sizes, epoch_generator(0, 0))
    assert traj.shape == (n // n_bins, n_bins)
    assert (y[traj].diff(dim=1) >= 0).all()  # monotone
    assert (bin_of[traj] == torch.arange(n_bins)).all()  # point b of each trajectory comes from bin b
    assert len(traj.unique()) == traj.numel()  # no row twice in an epoch
    for b in range(n_bins):  # bins of the minimum size are covered exactly
        if sizes[b] == sizes.min():
            assert set(traj[:, b].tolist()) == set(members[b, : sizes[b]].tolist())


def test_draws_depend_on_seed_and_epoch_only():
    members, sizes = percentile_bins(torch.randn(500), 10)
    a = sample_trajectories(members, sizes, epoch_generator(3, 7))
    assert torch.equal(a, sample_trajectories(members, sizes, epoch_generator(3, 7)))
    assert not torch.equal(a, sample_trajectories(members, sizes, epoch_generator(3, 8)))
    assert not torch.equal(a, sample_trajectories(members, sizes, epoch_generator(4, 7)))


def test_sampler_batches_an_epoch_and_follows_set_epoch():
    members, sizes = percentile_bins(torch.randn(500), 10)  # 50 trajectories
    sampler = TrajectorySampler(members, sizes, trajectories_per_batch=8, seed=1)
    batches = list(sampler)
    assert len(sampler) == len(batches) == 7 and batches[0].shape == (8, 10) and batches[-1].shape == (2, 10)
    sampler.set_epoch(1)
    assert not torch.equal(torch.cat(batches), torch.cat(list(sampler)))


def test_bad_bins_are_named():
    with pytest.raises(ConfigError, match="n_bins must be >= 2"):
        percentile_bins(torch.randn(10), 1)
    with pytest.raises(DataError, match="fewer than n_bins=128"):
        percentile_bins(torch.randn(100), 128)


def test_random_pairing_ablation_uses_each_row_once_without_order():
    y = torch.randn(1000)
    members, sizes = percentile_bins(y, 16)
    chains = torch.cat(list(TrajectorySampler(members, sizes, 4, seed=0, pairing="random")))
    assert chains.shape == (1000 // 16, 16) and len(chains.unique()) == chains.numel()
    assert not (y[chains].diff(dim=1) >= 0).all()  # not monotone: random pairs
    assert torch.equal(sample_random_chains(100, 10, epoch_generator(0, 1)), sample_random_chains(100, 10, epoch_generator(0, 1)))


def test_official_buckets_give_the_top_bin_the_remainder():
    """The official create_buckets: N // n_bins rows a bin, the top bin also takes N % n_bins."""
    y = torch.randn(17014)  # Superconductor's offline size: 132 a bin, the top bin 250
    members, sizes = percentile_bins(y, 128, "last_takes_remainder")
    assert sizes[:-1].eq(132).all() and sizes[-1] == 17014 - 127 * 132 == 250
    order = torch.argsort(y, stable=True)
    assert torch.equal(members[-1, :250], order[-250:]) and torch.equal(members[0, :132], order[:132])
    traj = sample_trajectories(members, sizes, epoch_generator(0, 0))
    assert traj.shape == (132, 128) and (y[traj].diff(dim=1) >= 0).all()
    assert len(traj[:, -1].unique()) == 132  # 132 of the top bin's 250 rows drawn this epoch
    balanced, balanced_sizes = percentile_bins(y, 128)
    assert balanced_sizes.max() - balanced_sizes.min() == 1 and balanced_sizes.min() == 132
    with pytest.raises(ConfigError, match="unknown binning 'even'"):
        percentile_bins(y, 128, "even")
