"""Lists of offline rows for ranking losses, and plain minibatches as lists (pure functions).

A list is ``m`` distinct offline rows; a ranking loss (ListNet, RankCosine) compares the
surrogate's order of a list with the true one. Lists are index tensors ``(lists, m)`` into the
table: the ``(lists, m, d)`` designs are gathered one batch at a time, never all at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from lightning_matchopt.errors import ConfigError, DataError


def seeded_generator(*entropy: int) -> torch.Generator:
    """A generator determined by ``entropy`` alone (seed, purpose, member), on every rank."""
    state = np.random.SeedSequence([e % 2**32 for e in entropy]).generate_state(1, dtype=np.uint64)[
        0
    ]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def random_lists(n_rows: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch without list augmentation: a permutation of the rows cut into lists.

    Shape ``(n_rows // length, length)``.

    Every row appears at most once an epoch; the ``n_rows % length`` rows left over sit out this
    epoch (another permutation the next). With one list a batch this is a plain shuffled minibatch.
    """
    order = torch.randperm(n_rows, generator=generator)
    return order[: (n_rows // length) * length].view(-1, length)


def fixed_lists(n_rows: int, n_lists: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """RaM's list augmentation: ``n_lists`` lists of ``length`` distinct rows each.

    Each list is the head of its own permutation (rows are distinct within a list, not across
    lists), as ``create_special_dataset_fast_unique`` draws them; built once for a run. Stored
    as int32 indices: RaM's 10,000 lists of 1,000 rows take 40 MB, not the 10^7 x d designs.
    """
    lists = torch.empty(n_lists, length, dtype=torch.int32)
    for i in range(n_lists):
        lists[i] = torch.randperm(n_rows, generator=generator)[:length]
    return lists


def bootstrap_rows(n_rows: int, generator: torch.Generator) -> torch.Tensor:
    """``n_rows`` rows drawn with replacement: a bootstrap resample of the data, ``(n_rows,)``.

    design-baselines weights each row's loss by how often a bootstrap drew it (``build_pipeline``,
    ``bootstraps=1``); drawing the resample itself gives every row the same expected weight.
    """
    return torch.randint(n_rows, (n_rows,), generator=generator)


class RowLists:
    """How the data module cuts training rows into lists (``data.lists``; None: trajectories).

    Args:
        length: ``m``, rows in a list (RaM: 1,000; a plain minibatch: its batch size).
        lists_per_batch: lists in one optimizer step (RaM: 128; a plain minibatch: 1).
        n_lists: RaM's list augmentation: this many lists, drawn once for the run (RaM draws
            10,000 and trains on 80% of them: 8,000), each epoch visited in a new order, the last
            incomplete batch dropped (RaM's ``drop_last``). None: no list augmentation, every
            epoch a new permutation of the rows cut into lists (RaM's Table 9 variant, one batch of
            designs is one list; and design-baselines' shuffled minibatches).
        bootstrap: train on a bootstrap resample of the rows (design-baselines' ``bootstraps=1``;
            each ensemble member its own).
    """

    def __init__(
        self,
        length: int = 1000,
        lists_per_batch: int = 128,
        n_lists: int | None = None,
        bootstrap: bool = False,
    ):
        if length < 2 or lists_per_batch < 1 or (n_lists is not None and n_lists < lists_per_batch):
            raise ConfigError(
                f"data.lists needs length >= 2 (got {length}), "
                f"lists_per_batch >= 1 (got {lists_per_batch}) "
                f"and n_lists null or >= lists_per_batch (got {n_lists})"
            )
        self.length, self.lists_per_batch, self.n_lists, self.bootstrap = (
            length,
            lists_per_batch,
            n_lists,
            bootstrap,
        )

    def pool(self, n_rows: int, seed: int, member: int) -> torch.Tensor:
        """The table rows member ``member`` trains on: all, or its bootstrap resample."""
        if self.length > n_rows:
            raise DataError(
                f"data.lists.length={self.length} exceeds the {n_rows} training rows; lower it"
            )
        if not self.bootstrap:
            return torch.arange(n_rows)
        return bootstrap_rows(n_rows, seeded_generator(seed, 3, member))

    def fixed(self, n_rows: int, seed: int, member: int) -> torch.Tensor | None:
        """The run's lists (positions in the pool) with augmentation; None without."""
        if self.n_lists is None:
            return None
        return fixed_lists(n_rows, self.n_lists, self.length, seeded_generator(seed, 4, member))

    def steps_per_epoch(self, n_rows: int) -> int:
        """Optimizer steps an epoch: whole batches of lists."""
        lists = self.n_lists if self.n_lists is not None else n_rows // self.length
        return lists // self.lists_per_batch

    def batches(
        self, pool: torch.Tensor, fixed: torch.Tensor | None, generator: torch.Generator
    ) -> Iterator[torch.Tensor]:
        """One epoch's batches of ``(lists_per_batch, length)`` table rows, one batch at a time."""
        steps = self.steps_per_epoch(len(pool))
        if fixed is None:
            lists = random_lists(len(pool), self.length, generator)
            for step in range(steps):
                yield pool[lists[step * self.lists_per_batch : (step + 1) * self.lists_per_batch]]
            return
        order = torch.randperm(len(fixed), generator=generator)
        for step in range(steps):
            yield pool[
                fixed[order[step * self.lists_per_batch : (step + 1) * self.lists_per_batch]].long()
            ]
