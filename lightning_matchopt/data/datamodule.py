"""MatchOptDataModule: task -> z-scored tensors -> a loader of monotone trajectory batches."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_matchopt.data.trajectories import (
    BINNINGS,
    epoch_generator,
    percentile_bins,
    sample_random_chains,
    sample_trajectories,
)
from lightning_matchopt.errors import ConfigError
from lightning_matchopt.tasks import Task, make_task


class DesignTable(Dataset):
    """In-memory z-scored features and scores, indexed by a whole tensor of rows at once."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], self.y[rows]


class TrajectorySampler(DistributedSampler):
    """Yields an epoch's trajectory batches as ``(trajectories_per_batch, n_bins)`` row indices.

    The draws depend only on ``(seed, epoch)``, so every rank sees the same batches (the module
    splits each batch's pairs across ranks) and a resumed run draws what the killed one would
    have. It subclasses ``DistributedSampler`` only so that Lightning keeps it under DDP instead
    of wrapping it in one that would shard and pad it.
    """

    def __init__(
        self,
        members: torch.Tensor,
        sizes: torch.Tensor,
        trajectories_per_batch: int,
        seed: int,
        pairing: str = "trajectories",
        ensemble_size: int = 1,
    ):
        # DistributedSampler.__init__ is not called: it needs a process group and a dataset length.
        # The attributes Lightning may read from a DistributedSampler say what this one does.
        self.shuffle, self.drop_last = True, False
        self.members, self.sizes, self.pairing = members, sizes, pairing
        self.trajectories_per_batch, self.seed, self.epoch = trajectories_per_batch, seed, 0
        self.ensemble_size = ensemble_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(int(self.sizes.min()) / self.trajectories_per_batch)

    def __iter__(self) -> Iterator[torch.Tensor]:
        # One epoch of draws per ensemble member, each from its own stream; a batch stacks the
        # members' batches member-major (the module splits them back).
        per_member = [self._draw(epoch_generator(self.seed, self.epoch, k)) for k in range(self.ensemble_size)]
        for batches in zip(*(draws.split(self.trajectories_per_batch) for draws in per_member)):
            yield batches[0] if len(batches) == 1 else torch.cat(batches)

    def _draw(self, generator: torch.Generator) -> torch.Tensor:
        if self.pairing == "random":
            return sample_random_chains(int(self.sizes.sum()), len(self.sizes), generator)
        return sample_trajectories(self.members, self.sizes, generator)


class MatchOptDataModule(L.LightningDataModule):
    """Builds MATCH-OPT's trajectory batches from a task.

    Args:
        task: task name (``tfbind8``, ``shekel``, ... or a Design-Bench id such as ``TFBind8-Exact-v0``).
        data_root: folder holding Design-Bench's data folders (default: ``$MATCHOPT_DATA_ROOT``).
        task_options: extra keyword arguments for the task (e.g. ``{dim: 8}`` for ``ackley``).
        n_bins: percentile bins = trajectory length (paper: 128).
        trajectories_per_batch: trajectories per optimizer step, over all processes (paper: 1).
        seed: seed of the trajectory draws; default: the run's ``seed_everything`` value.
        pairing: ``trajectories`` (the paper's percentile-binned monotone trajectories) or
            ``random`` (the ablation: chains of random rows, so consecutive pairs are random pairs).
        binning: ``balanced`` (bin sizes differ by at most one) or ``last_takes_remainder`` (the
            official code: ``N // n_bins`` rows a bin, the top bin also takes the rest).
        ensemble_size: surrogates trained together, each on its own draws (linked from
            ``model.ensemble_size`` by the CLI).
    """

    def __init__(
        self,
        task: str = "shekel",
        data_root: str | None = None,
        task_options: dict[str, Any] | None = None,
        n_bins: int = 128,
        trajectories_per_batch: int = 1,
        seed: int | None = None,
        pairing: str = "trajectories",
        binning: str = "balanced",
        ensemble_size: int = 1,
    ) -> None:
        super().__init__()
        if pairing not in ("trajectories", "random"):
            raise ConfigError(f"unknown data.pairing {pairing!r}; use 'trajectories' or 'random'")
        if n_bins < 2:
            raise ConfigError(f"data.n_bins must be >= 2, got {n_bins}")
        if trajectories_per_batch < 1:
            raise ConfigError(f"data.trajectories_per_batch must be >= 1, got {trajectories_per_batch}")
        if ensemble_size < 1:
            raise ConfigError(f"data.ensemble_size must be >= 1, got {ensemble_size}")
        if binning not in BINNINGS:
            raise ConfigError(f"unknown data.binning {binning!r}; use one of {', '.join(BINNINGS)}")
        self.save_hyperparameters()
        self.seed = seed if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        self.task: Task = make_task(task, data_root, **(task_options or {}))  # cheap: reads no file
        self.task.use_run_seed(self.seed)
        self.n_bins, self.trajectories_per_batch, self.pairing = n_bins, trajectories_per_batch, pairing
        self.binning, self.ensemble_size = binning, ensemble_size
        self._table: DesignTable | None = None

    @property
    def input_dim(self) -> int:
        """Surrogate input width, known before any file is read (for ``link_arguments``)."""
        return self.task.input_dim

    def setup(self, stage: str | None = None) -> None:
        if self._table is not None:
            return
        data = self.task.data
        features = torch.from_numpy(self.task.to_features(data.x)).double()
        y = torch.from_numpy(data.y)
        self.x_mean, self.x_std = features.mean(0), features.std(0).clamp_min(1e-6)
        self.y_mean, self.y_std = y.mean(), y.std()
        x_norm, y_norm = self.normalize_x(features).float(), ((y - self.y_mean) / self.y_std).float()
        self.members, self.sizes = percentile_bins(y_norm, self.n_bins, self.binning)
        self._table = DesignTable(x_norm, y_norm)

    @property
    def table(self) -> DesignTable:
        """The z-scored offline data (after ``setup``)."""
        if self._table is None:
            raise RuntimeError("MatchOptDataModule.setup() has not run")
        return self._table

    def normalize_x(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.x_mean.to(features)) / self.x_std.to(features)

    def denormalize_x(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.x_std.to(x) + self.x_mean.to(x)

    def denormalize_y(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.y_std.to(y) + self.y_mean.to(y)

    def train_dataloader(self) -> DataLoader:
        sampler = TrajectorySampler(
            self.members, self.sizes, self.trajectories_per_batch, self.seed, self.pairing, self.ensemble_size
        )
        return DataLoader(self.table, sampler=sampler, batch_size=None)

    def search_start(self, n_designs: int, start: str, seed: int) -> torch.Tensor:
        """z-scored starting points of the search: the top designs, random designs, or N(0, I)."""
        table = self.table
        if n_designs > len(table):
            raise ConfigError(
                f"search.n_designs={n_designs} exceeds the {len(table)} offline designs; lower search.n_designs"
            )
        generator = torch.Generator().manual_seed(seed)
        if start == "top":
            return table.x[torch.topk(table.y, n_designs).indices]
        if start == "random_data":
            return table.x[torch.randperm(len(table), generator=generator)[:n_designs]]
        if start == "random":
            return torch.randn(n_designs, table.x.shape[1], generator=generator)
        raise ConfigError(f"unknown search start {start!r}; use 'top', 'random_data' or 'random'")

    def best_offline_score(self) -> float:
        """Normalized score of the best offline design, D(best): the bar a search must clear."""
        return float(self.task.normalize_score(np.max(self.task.data.y)))

    def random_designs_reference(self, n_designs: int) -> dict[str, Any] | None:
        """What ``n_designs`` uniformly random designs score, over the task's reference draws.

        The other bar a search must clear: on TF-Bind-8 the best of 128 random sequences
        already scores about 0.94. Mean and std over ``task.random_reference_draws`` draws of
        the 100th and 50th percentile scores (seed 0: a property of the task, the same in every
        run); None where the task has no uniform law or no cheap oracle.
        """
        task, draws = self.task, self.task.random_reference_draws
        if not draws or not task.has_oracle:
            return None
        designs = task.random_designs(draws * n_designs, np.random.default_rng(0))
        if designs is None:
            return None
        scores = task.normalize_score(task.oracle(designs)).reshape(draws, n_designs)
        best, median = np.nanmax(scores, axis=1), np.nanmedian(scores, axis=1)
        return {
            "draws": draws,
            "score_100th": float(best.mean()),
            "score_100th_std": float(best.std()),
            "score_50th": float(median.mean()),
            "score_50th_std": float(median.std()),
        }
