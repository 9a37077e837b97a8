"""Trajectories and lists of offline rows (pure samplers), and the DataModule."""

from lightning_matchopt.data.datamodule import DesignTable, ListSampler, MatchOptDataModule, TrajectorySampler
from lightning_matchopt.data.lists import RowLists, bootstrap_rows, fixed_lists, random_lists
from lightning_matchopt.data.trajectories import (
    epoch_generator,
    percentile_bins,
    sample_random_chains,
    sample_trajectories,
)

__all__ = [
    "DesignTable",
    "ListSampler",
    "MatchOptDataModule",
    "RowLists",
    "TrajectorySampler",
    "bootstrap_rows",
    "epoch_generator",
    "fixed_lists",
    "percentile_bins",
    "random_lists",
    "sample_random_chains",
    "sample_trajectories",
]
