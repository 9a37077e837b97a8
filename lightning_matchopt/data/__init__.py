"""Trajectory construction and the DataModule."""

from lightning_matchopt.data.datamodule import DesignTable, MatchOptDataModule, TrajectorySampler
from lightning_matchopt.data.trajectories import (
    epoch_generator,
    percentile_bins,
    sample_random_chains,
    sample_trajectories,
)

__all__ = [
    "DesignTable",
    "MatchOptDataModule",
    "TrajectorySampler",
    "epoch_generator",
    "percentile_bins",
    "sample_random_chains",
    "sample_trajectories",
]
