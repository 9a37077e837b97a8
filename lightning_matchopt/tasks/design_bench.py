"""Design-Bench tasks read from Design-Bench's own files (no design-bench install needed).

Files keep Design-Bench's layout under the data root, e.g.
``<data_root>/tf_bind_8-SIX6_REF_R1/tf_bind_8-x-0.npy``. Offline subsets and normalizers
reproduce Design-Bench 2.0.20's registrations; the oracles are exact (TF-Bind lookups) or
re-created with maintained packages (:mod:`lightning_matchopt.tasks.oracles`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import DataError
from lightning_matchopt.tasks.base import (
    OfflineData,
    Task,
    check_finite,
    load_array,
    percentile_band,
    resolve_data_root,
)


def sequence_codes(tokens: np.ndarray, num_classes: int) -> np.ndarray:
    """Base-``num_classes`` integer code of each token sequence (first token most significant)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    weights = num_classes ** np.arange(tokens.shape[1] - 1, -1, -1, dtype=np.int64)
    return tokens @ weights


def decode_sequences(codes: np.ndarray, length: int, num_classes: int) -> np.ndarray:
    """Inverse of ``sequence_codes``: ``(N,)`` codes -> ``(N, length)`` int64 tokens."""
    powers = num_classes ** np.arange(length - 1, -1, -1, dtype=np.int64)
    return (np.asarray(codes, dtype=np.int64)[:, None] // powers) % num_classes


def shard_paths(task_name: str, data_root, folder: str, prefix: str, kind: str) -> list[Path]:
    """Paths of a Design-Bench dataset's ``x`` or ``y`` shards (``<folder>/<prefix>-<kind>-<i>.npy[.gz]``), in order.

    Errors name what is missing and how to get it.
    """
    directory = resolve_data_root(data_root) / folder

    def index(path: Path) -> int:
        return int(path.name.split("-")[-1].split(".")[0])

    def is_shard(path: Path) -> bool:  # NAME-<i>.npy or NAME-<i>.npy.gz, not a download's temporary file
        number, _, suffix = path.name.split("-")[-1].partition(".")
        return number.isdigit() and suffix in ("npy", "npy.gz")

    paths = sorted((p for p in directory.glob(f"{prefix}-{kind}-*.npy*") if is_shard(p)), key=index)
    if not paths:
        raise DataError(
            f"{task_name}: no {prefix}-{kind}-*.npy files in {str(directory)!r}. Put Design-Bench's "
            f"'{folder}/' folder under the data root (--data.data_root or $MATCHOPT_DATA_ROOT), "
            f"or fetch it from the Hugging Face hub: matchopt data fetch --data-root DIR {task_name}"
        )
    found = [index(p) for p in paths]
    if found != list(range(len(paths))):
        missing = sorted(set(range(max(found) + 1)) - set(found))
        raise DataError(f"{task_name}: shard(s) {missing} of {prefix}-{kind} are missing in {str(directory)!r}")
    return paths


def last_score_table(codes: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """``table[code]`` = the score of the LAST row with that code (NaN for codes never measured).

    Design-Bench's exact oracles fill a dict row by row, so later rows overwrite earlier ones.
    NumPy does not promise an order for repeated indices in ``table[codes] = y``, so the last
    occurrence is found explicitly.
    """
    reversed_codes = codes[::-1]
    unique, first_in_reversed = np.unique(reversed_codes, return_index=True)
    table = np.full(size, np.nan)
    table[unique] = y[::-1][first_in_reversed]  # float32 scores, as Design-Bench stores them
    return table


class ExactLookupTask(Task):
    """A token task whose oracle is the table of every sequence's measured score.

    Design-Bench's exact oracle fills a dict row by row, so a sequence measured several times
    keeps the score of its LAST row in file order; ``lookup_table`` does the same with an array
    indexed by the sequence's base-4 code. The offline set is the ``[min, max]_percentile`` band
    of all rows, in file order.
    """

    folder: str
    prefix: str
    length: int
    num_classes = 4
    max_percentile = 50.0
    min_percentile = 0.0
    random_reference_draws = 2000  # a table lookup: 256,000 scores in milliseconds

    def __init__(self, data_root: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.data_root = data_root
        self._table: np.ndarray | None = None

    @property
    def design_shape(self) -> tuple[int, ...]:
        """Designs are sequences of ``length`` tokens."""
        return (self.length,)

    def shard_paths(self, kind: str) -> list[Path]:
        """The task's ``x`` or ``y`` shard files, in order."""
        return shard_paths(self.name, self.data_root, self.folder, self.prefix, kind)

    def _full_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row's sequence code and score, in shard order (codes keep memory small: 4 bytes a row)."""
        xs, ys = self.shard_paths("x"), self.shard_paths("y")
        if len(xs) != len(ys):
            raise DataError(f"{self.name}: {len(xs)} x shards but {len(ys)} y shards in the data folder")
        codes, scores = [], []
        for x_path, y_path in zip(xs, ys, strict=True):
            x, y = load_array(x_path), load_array(y_path).reshape(-1)
            if x.ndim != 2 or x.shape[1] != self.length:
                raise DataError(f"{self.name}: {x_path.name} must hold (N, {self.length}) tokens, got {x.shape}")
            if len(x) != len(y):
                raise DataError(f"{self.name}: {x_path.name} has {len(x)} rows but {y_path.name} has {len(y)}")
            if x.size and (x.min() < 0 or x.max() >= self.num_classes):
                raise DataError(f"{self.name}: {x_path.name} holds tokens outside [0, {self.num_classes - 1}]")
            codes.append(sequence_codes(x, self.num_classes).astype(np.int32))
            scores.append(y.astype(np.float32))
        code, y = np.concatenate(codes), np.concatenate(scores)
        check_finite(self.name, "y", y)  # before the percentile cut, which would silently drop NaN rows
        return code, y

    def _load(self) -> OfflineData:
        codes, y = self._full_codes()
        self._table = last_score_table(codes, y, self.num_classes**self.length)
        rows = self._subsample(np.flatnonzero(percentile_band(y, self.min_percentile, self.max_percentile)))
        x = decode_sequences(codes[rows], self.length, self.num_classes)
        return OfflineData(x=x, y=y[rows].astype(np.float64), y_min=float(y.min()), y_max=float(y.max()))

    def _subsample(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the offline set kept for training (all of them unless a protocol subsamples)."""
        return rows

    def _score(self, designs: np.ndarray) -> np.ndarray:
        self.data  # noqa: B018  (loads the table)
        designs = np.asarray(designs)
        if designs.ndim != 2 or designs.shape[1] != self.length:
            raise DataError(f"{self.name}: designs must be (N, {self.length}) tokens, got {designs.shape}")
        return self._table[sequence_codes(designs, self.num_classes)]


class TFBind8(ExactLookupTask):
    """TF-Bind-8 (SIX6_REF_R1): 8-mers, exact oracle over all 65,536 sequences."""

    name = "tfbind8"
    folder = "tf_bind_8-SIX6_REF_R1"
    prefix = "tf_bind_8"
    length = 8


class TFBind10(ExactLookupTask):
    """TF-Bind-10 (PHO4): 10-mers, exact oracle over all 1,048,576 sequences.

    The shards hold 8,321,066 rows, every sequence measured 5 to 8 times; the oracle keeps each
    sequence's last row in shard order (Design-Bench's dict), the offline set is the bottom 50%
    of ALL rows, and the paper's protocol trains on a random ``subsample`` of it.

    Args:
        data_root: folder holding ``tf_bind_10-pho4/``.
        subsample: offline rows kept for training (paper: 10,000; None keeps all 4.2 million).
        subsample_seed: seed of that draw; None draws from the run's seed, so every seed trains
            on its own 10,000 rows, as in the official code (each of its runs built its own
            Design-Bench task, whose draw was unseeded). Every DDP rank draws the same rows.
    """

    name = "tfbind10"
    folder = "tf_bind_10-pho4"
    prefix = "tf_bind_10"
    length = 10

    def __init__(
        self,
        data_root: str | os.PathLike | None = None,
        subsample: int | None = 10_000,
        subsample_seed: int | None = 0,
    ) -> None:
        super().__init__(data_root)
        if subsample is not None and subsample < 2:
            raise DataError(f"tfbind10: subsample must be >= 2 or null, got {subsample}")
        self.subsample, self.subsample_seed, self._run_seed = subsample, subsample_seed, 0

    def use_run_seed(self, seed: int) -> None:
        """Subsample with the run's seed, so that seeds differ in the rows they train on."""
        self._run_seed = seed

    def _subsample(self, rows: np.ndarray) -> np.ndarray:
        if self.subsample is None or self.subsample >= len(rows):
            return rows
        rng = np.random.default_rng(self._run_seed if self.subsample_seed is None else self.subsample_seed)
        return np.sort(rng.choice(rows, size=self.subsample, replace=False))
