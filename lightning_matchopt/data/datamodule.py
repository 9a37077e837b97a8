"""MatchOptDataModule: task -> z-scored tensors -> a loader of monotone trajectory batches."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_matchopt.data.lists import RowLists
from lightning_matchopt.data.trajectories import (
    BINNINGS,
    epoch_generator,
    held_out_trajectories,
    percentile_bins,
    sample_random_chains,
    sample_trajectories,
    split_generator,
)
from lightning_matchopt.errors import ConfigError, DataError
from lightning_matchopt.tasks import Task, make_task
from lightning_matchopt.tasks.base import check_finite
from lightning_matchopt.tasks.files import read_design_file


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
        """Draws depend only on ``(seed, epoch)``: every rank, and a resumed run, draws the same."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(int(self.sizes.min()) / self.trajectories_per_batch)

    def __iter__(self) -> Iterator[torch.Tensor]:
        # One epoch of draws per ensemble member, each from its own stream; a batch stacks the
        # members' batches member-major (the module splits them back).
        per_member = [self._draw(epoch_generator(self.seed, self.epoch, k)) for k in range(self.ensemble_size)]
        for batches in zip(*(draws.split(self.trajectories_per_batch) for draws in per_member), strict=True):
            yield batches[0] if len(batches) == 1 else torch.cat(batches)

    def _draw(self, generator: torch.Generator) -> torch.Tensor:
        if self.pairing == "random":
            return sample_random_chains(int(self.sizes.sum()), len(self.sizes), generator)
        return sample_trajectories(self.members, self.sizes, generator)


class ListSampler(DistributedSampler):
    """Yields an epoch's list batches, ``(lists_per_batch, length)`` row indices (``RowLists``), every member its own.

    Like ``TrajectorySampler``: draws depend only on ``(seed, epoch)``, every rank sees the same
    batches (the ranking terms split the lists across ranks), members are stacked member-major.
    A run's fixed lists and bootstrap resamples are drawn once, at construction.
    """

    def __init__(self, lists: RowLists, n_rows: int, seed: int, ensemble_size: int = 1):
        self.shuffle, self.drop_last = True, True
        self.lists, self.n_rows, self.seed, self.epoch = lists, n_rows, seed, 0
        self.pools = [lists.pool(n_rows, seed, k) for k in range(ensemble_size)]
        self.fixed = [lists.fixed(n_rows, seed, k) for k in range(ensemble_size)]

    def set_epoch(self, epoch: int) -> None:
        """Draws depend only on ``(seed, epoch)``: every rank, and a resumed run, draws the same."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.lists.steps_per_epoch(self.n_rows)

    def __iter__(self) -> Iterator[torch.Tensor]:
        streams = [
            self.lists.batches(pool, fixed, epoch_generator(self.seed, self.epoch, k))
            for k, (pool, fixed) in enumerate(zip(self.pools, self.fixed, strict=True))
        ]
        for batches in zip(*streams, strict=True):
            yield batches[0] if len(batches) == 1 else torch.cat(batches)


VAL_TRAJECTORIES_PER_BATCH = 32


class FixedTrajectories(DistributedSampler):
    """Yields the held-out trajectories in batches of ``trajectories_per_batch``, the same on every rank.

    As in training, every rank sees every batch and the module splits its pairs and points
    across ranks, so no row is padded in or counted twice. A ``DistributedSampler`` only so
    that Lightning keeps it.
    """

    def __init__(self, trajectories: torch.Tensor, trajectories_per_batch: int) -> None:
        self.shuffle, self.drop_last = False, False
        self.batches = trajectories.split(trajectories_per_batch)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to do: the validation batches are the same every epoch."""

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[torch.Tensor]:
        yield from self.batches


@dataclass(frozen=True)
class PredictionInputs:
    """What ``matchopt predict`` scores: designs in the task's format, known scores if any, and where they came from."""

    designs: np.ndarray
    y: np.ndarray | None
    source: str
    columns: list[str] | None = None  # a CSV's design column names
    held_out: np.ndarray | None = None  # offline data: whether each row was held out of training


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
        val_fraction: share of the offline rows held out for validation (0: none, train on every
            row as the paper's code does), drawn by seed and stratified over the score; held out
            before the percentile bins are built, never trained on nor searched from. The split is
            one for the whole ensemble: every member trains on the same rows and is validated on
            the same held-out trajectories.
        predict_path: designs for ``matchopt predict`` (NPZ array ``x`` or a CSV of design
            columns, as for the ``files`` task; scores optional); None: the task's offline data.
        predict_batch_size: designs per prediction batch.
        ensemble_size: surrogates trained together, each on its own draws of the training rows
            (linked from ``model.surrogate``'s ``ensemble_size`` by the CLI).
        lists: train on lists of offline rows instead of trajectories (ranking losses, plain
            minibatches: ``RowLists``); None: MATCH-OPT's trajectories (``n_bins`` and
            ``pairing`` then shape the batches; ``n_bins`` still shapes the held-out trajectories).
        standardize_x: z-score the features with the training rows' mean and std (the default);
            false: the surrogate and the search see the raw features (COMs' ``--no-normalize-xs``
            on token tasks: the logits as they are).
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
        val_fraction: float = 0.1,
        predict_path: str | None = None,
        predict_batch_size: int = 4096,
        ensemble_size: int = 1,
        lists: RowLists | None = None,
        standardize_x: bool = True,
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
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if predict_batch_size < 1:
            raise ConfigError(f"data.predict_batch_size must be >= 1, got {predict_batch_size}")
        self.save_hyperparameters()
        self.seed = seed if seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        self.task: Task = make_task(task, data_root, **(task_options or {}))  # cheap: reads no file
        self.task.use_run_seed(self.seed)
        self.n_bins, self.trajectories_per_batch, self.pairing = n_bins, trajectories_per_batch, pairing
        self.binning, self.val_fraction, self.ensemble_size = binning, val_fraction, ensemble_size
        self.predict_path, self.predict_batch_size = predict_path, predict_batch_size
        self.lists, self.standardize_x = lists, standardize_x
        self._table: DesignTable | None = None
        self.held_out = torch.empty(0, 0, dtype=torch.long)

    @property
    def input_dim(self) -> int:
        """Surrogate input width, known before any file is read (for ``link_arguments``)."""
        return self.task.input_dim

    def setup(self, stage: str | None = None) -> None:
        """Split the held-out trajectories and z-score the data, once (later calls keep the split)."""
        if self._table is not None:
            return
        y = torch.from_numpy(self.task.data.y)
        self._build(held_out_trajectories(y, self.val_fraction, self.n_bins, split_generator(self.seed)))

    def _build(self, held_out: torch.Tensor) -> None:
        """Tables, normalizers and bins from the training rows: everything but ``held_out``."""
        data = self.task.data
        features = torch.from_numpy(self.task.to_features(data.x)).double()
        y = torch.from_numpy(data.y)
        train = torch.ones(len(y), dtype=torch.bool)
        train[held_out.flatten()] = False
        if int(train.sum()) < self.n_bins <= len(y):  # the split is the cause (else percentile_bins says)
            raise DataError(
                f"data.val_fraction={self.val_fraction} holds out {held_out.numel()} of {len(y)} rows, leaving "
                f"{int(train.sum())} to train on, fewer than data.n_bins={self.n_bins}; "
                "lower data.val_fraction or data.n_bins"
            )
        self.train_rows = train.nonzero().flatten()
        train_features, train_y = features[self.train_rows], y[self.train_rows]
        self.x_mean, self.x_std = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
        if not self.standardize_x:
            self.x_mean, self.x_std = torch.zeros_like(self.x_mean), torch.ones_like(self.x_std)
        self.y_mean, self.y_std = train_y.mean(), train_y.std()
        x_norm, y_norm = self.normalize_x(features).float(), ((y - self.y_mean) / self.y_std).float()
        self.offline = DesignTable(x_norm, y_norm)  # every offline row, held-out ones included
        self._table = DesignTable(x_norm[self.train_rows], y_norm[self.train_rows])
        self.members, self.sizes = percentile_bins(self._table.y, self.n_bins, self.binning)
        self.held_out = held_out

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints, so validate / predict / search use the training run's split (and normalizers)."""
        return {"task": self.task.name, "n_rows": len(self.offline), "held_out": self.held_out}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the training run's split; refuse a checkpoint of another task or another number of offline rows."""
        if state_dict["task"] != self.task.name:
            raise ConfigError(
                f"the checkpoint was trained on task {state_dict['task']!r}, not {self.task.name!r}: "
                "pass the config it was trained with (its log dir's config.yaml)"
            )
        if state_dict["n_rows"] != len(self.offline):
            raise DataError(
                f"the checkpoint was trained on {state_dict['n_rows']} offline rows of {self.task.name!r}, "
                f"this data has {len(self.offline)}: pass the data and data.task_options it was trained with"
            )
        if not torch.equal(state_dict["held_out"], self.held_out):
            self._build(state_dict["held_out"])

    @property
    def table(self) -> DesignTable:
        """The z-scored offline data (after ``setup``)."""
        if self._table is None:
            raise RuntimeError("MatchOptDataModule.setup() has not run")
        return self._table

    def normalize_x(self, features: torch.Tensor) -> torch.Tensor:
        """Raw features to the z-scored space the surrogate and the search work in."""
        return (features - self.x_mean.to(features)) / self.x_std.to(features)

    def denormalize_x(self, x: torch.Tensor) -> torch.Tensor:
        """z-scored designs back to raw features."""
        return x * self.x_std.to(x) + self.x_mean.to(x)

    def denormalize_y(self, y: torch.Tensor) -> torch.Tensor:
        """z-scored predictions back to the task's score units."""
        return y * self.y_std.to(y) + self.y_mean.to(y)

    def train_dataloader(self) -> DataLoader:
        """The training batches: trajectories (or lists) drawn afresh every epoch."""
        if self.lists is not None:
            sampler = ListSampler(self.lists, len(self.table), self.seed, self.ensemble_size)
            return DataLoader(self.table, sampler=sampler, batch_size=None)
        sampler = TrajectorySampler(
            self.members, self.sizes, self.trajectories_per_batch, self.seed, self.pairing, self.ensemble_size
        )
        return DataLoader(self.table, sampler=sampler, batch_size=None)

    def val_dataloader(self) -> DataLoader | list:
        """The held-out trajectories, or none when nothing was held out."""
        if not self.held_out.numel():
            if self.trainer is not None and self.trainer.state.fn == "validate":
                raise ConfigError(
                    "no held-out rows to validate on: the surrogate was trained with data.val_fraction=0; "
                    "train with data.val_fraction > 0, or score designs with known scores by matchopt predict"
                )
            # No validation: Lightning skips an empty list, and says so; here that is the setting's meaning.
            warnings.filterwarnings("ignore", "Total length of `list` across ranks is zero")
            return []
        # No optimizer step between validation batches: a few large ones cost less than many small.
        sampler = FixedTrajectories(self.held_out, VAL_TRAJECTORIES_PER_BATCH)
        return DataLoader(self.offline, sampler=sampler, batch_size=None)

    def prediction_inputs(self) -> PredictionInputs:
        """The designs ``matchopt predict`` scores: ``predict_path``, or the offline data (after ``setup``)."""
        if self.predict_path is None:
            held_out = np.zeros(len(self.offline), dtype=bool)
            held_out[self.held_out.flatten().numpy()] = True
            return PredictionInputs(self.task.data.x, self.task.data.y, "offline data", held_out=held_out)
        x, y, columns = read_design_file(self.predict_path, require_y=False)
        task, where = self.task, repr(str(self.predict_path))
        if x.ndim < 2 or x.shape[1:] != task.design_shape:
            got = x.shape[1:] if x.ndim >= 2 else "(none)"
            raise DataError(
                f"{where} holds designs of shape {got}, but task {task.name!r} has designs of shape "
                f"{task.design_shape}: give one {'column' if columns else 'entry'} per design feature"
            )
        check_finite("predict_path", "x", x)
        if task.is_discrete:
            if not np.array_equal(x, np.round(x)) or x.min() < 0 or x.max() >= task.num_classes:
                raise DataError(f"{where}: token designs must be integers in [0, {task.num_classes - 1}]")
            x = x.astype(np.int64)
        y = None if y is None else np.asarray(y, dtype=np.float64).reshape(len(x), -1)[:, 0]
        return PredictionInputs(x, y, str(self.predict_path), columns=columns)

    def predict_dataloader(self) -> DataLoader:
        """The designs to predict (``data.predict_*``), z-scored."""
        self.predict_inputs = self.prediction_inputs()
        features = torch.from_numpy(self.task.to_features(self.predict_inputs.designs)).double()
        return DataLoader(self.normalize_x(features).float(), batch_size=self.predict_batch_size)

    def search_start(self, n_designs: int, start: str, seed: int) -> torch.Tensor:
        """The search's z-scored starts from the training rows.

        The search's own concern, kept here for ``benchmarks/`` scripts that call it (see
        ``lightning_matchopt.search.starts``).
        """
        from lightning_matchopt.search.starts import search_start

        return search_start(self.table.x, self.table.y, n_designs, start, seed)
