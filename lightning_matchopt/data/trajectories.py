"""Percentile bins and monotone trajectories (pure functions of tensors).

MATCH-OPT sorts the offline data by score, cuts it into ``n_bins`` equal-count percentile bins and,
each epoch, draws one point from every bin per trajectory: ``N // n_bins`` trajectories of length
``n_bins`` whose scores never decrease.
"""

from __future__ import annotations

import numpy as np
import torch

from lightning_matchopt.errors import ConfigError, DataError

BINNINGS = ("balanced", "last_takes_remainder")


def percentile_bins(y: torch.Tensor, n_bins: int, binning: str = "balanced") -> tuple[torch.Tensor, torch.Tensor]:
    """Cut rows sorted by ``y`` into ``n_bins`` contiguous bins.

    ``balanced`` (this project): sizes differ by at most one. ``last_takes_remainder`` (the
    official code's ``create_buckets``): every bin holds ``N // n_bins`` rows and the top bin also
    takes the ``N % n_bins`` rows left over, so it can be almost twice as wide (Superconductor:
    250 rows against 132); since each epoch draws ``N // n_bins`` rows from every bin, the top
    bin's rows are then drawn about half as often.

    Returns:
        members: ``(n_bins, max_size)`` row indices, bin ``b`` holding the ``b``-th lowest scores;
            padded with -1 where a bin is one row short.
        sizes: ``(n_bins,)`` number of rows in each bin.
    """
    if n_bins < 2:
        raise ConfigError(f"n_bins must be >= 2, got {n_bins}")
    if binning not in BINNINGS:
        raise ConfigError(f"unknown binning {binning!r}; use one of {', '.join(BINNINGS)}")
    if len(y) < n_bins:
        raise DataError(f"the offline set has {len(y)} rows, fewer than n_bins={n_bins}; lower --data.n_bins")
    order = torch.argsort(y, stable=True)
    if binning == "balanced":
        chunks = torch.tensor_split(order, n_bins)
    else:
        width = len(y) // n_bins
        chunks = [*order[: width * (n_bins - 1)].split(width), order[width * (n_bins - 1) :]]
    sizes = torch.tensor([len(c) for c in chunks])
    members = torch.full((n_bins, int(sizes.max())), -1, dtype=torch.long)
    for b, chunk in enumerate(chunks):
        members[b, : len(chunk)] = chunk
    return members, sizes


def sample_trajectories(members: torch.Tensor, sizes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One epoch of trajectories: ``(min(sizes), n_bins)`` row indices, column ``b`` from bin ``b``.

    Each bin is permuted independently and its first ``min(sizes)`` rows are used, so within an
    epoch every row of a bin appears at most once (exactly once in the smallest bins).
    """
    keys = torch.rand(members.shape, generator=generator)
    keys[members < 0] = float("inf")  # padding sorts last and is never drawn
    picks = keys.argsort(dim=1)[:, : int(sizes.min())]
    return members.gather(1, picks).T.contiguous()


def sample_random_chains(n_rows: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """The ablation of trajectories: ``(n_rows // length, length)`` rows in random order.

    Consecutive points are random pairs, with no ordering by score; every row is used at most
    once per epoch, as with percentile trajectories.
    """
    order = torch.randperm(n_rows, generator=generator)
    return order[: (n_rows // length) * length].view(-1, length)


def held_out_trajectories(
    y: torch.Tensor, fraction: float, n_bins: int, generator: torch.Generator
) -> torch.Tensor:
    """Rows held out for validation, as ``(T, m)`` monotone trajectories; ``(0, 0)`` for ``fraction=0``.

    ``T * m`` is about ``fraction * N``: ``T = round(fraction * N / n_bins)`` trajectories (at
    least one) of ``m <= n_bins`` rows. Rows sorted by score are cut into ``m`` equal-count strata
    and ``T`` random rows are drawn from each, so the held-out rows span the score range evenly;
    trajectory ``t`` takes the ``t``-th draw of every stratum, so its scores never decrease.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return torch.empty(0, 0, dtype=torch.long)
    n = len(y)
    count = max(1, round(fraction * n / n_bins))
    length = max(2, min(n_bins, round(fraction * n / count)))
    count = min(count, n // length)
    strata = torch.tensor_split(torch.argsort(y, stable=True), length)
    return torch.stack([s[torch.randperm(len(s), generator=generator)[:count]] for s in strata], dim=1)


def split_generator(seed: int) -> torch.Generator:
    """The held-out split's generator: its own stream (``spawn_key``), apart from the epochs' draws."""
    state = np.random.SeedSequence(seed % 2**32, spawn_key=(1,)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def epoch_generator(seed: int, epoch: int, member: int = 0) -> torch.Generator:
    """A generator determined by ``(seed, epoch)`` alone: same draws on every rank and after resume.

    Ensemble member ``k > 0`` gets its own stream ``(seed, epoch, k)``; member 0 keeps the
    single surrogate's, so a one-member run draws exactly what it always did.
    """
    entropy = [seed % 2**32, epoch] + ([member] if member else [])
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
