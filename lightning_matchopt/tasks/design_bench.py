"""Design-Bench tasks read from Design-Bench's own files (no design-bench install needed).

Files keep Design-Bench's layout under the data root, e.g.
``<data_root>/tf_bind_8-SIX6_REF_R1/tf_bind_8-x-0.npy``. Offline subsets, normalizers and exact
oracles reproduce Design-Bench's ``TFBind8-Exact-v0`` / ``TFBind10-Exact-v0``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import DataError
from lightning_matchopt.tasks.base import OfflineData, Task, check_finite, load_array, resolve_data_root


def percentile_band(y: np.ndarray, min_percentile: float, max_percentile: float) -> np.ndarray:
    """Row mask of Design-Bench's ``subsample``: ``percentile(y, lo) <= y <= percentile(y, hi)``."""
    lower, upper = np.percentile(y, min_percentile), np.percentile(y, max_percentile)
    return (y >= lower) & (y <= upper)


def sequence_codes(tokens: np.ndarray, num_classes: int) -> np.ndarray:
    """Base-``num_classes`` integer code of each token sequence (first token most significant)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    weights = num_classes ** np.arange(tokens.shape[1] - 1, -1, -1, dtype=np.int64)
    return tokens @ weights


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

    def __init__(self, data_root: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.data_root = data_root
        self._table: np.ndarray | None = None

    @property
    def design_shape(self) -> tuple[int, ...]:
        return (self.length,)

    def shard_paths(self, kind: str) -> list[Path]:
        """Paths of the ``x`` or ``y`` shards, in shard order; errors name the first missing one."""
        folder = resolve_data_root(self.data_root) / self.folder
        paths = sorted(
            (p for p in folder.glob(f"{self.prefix}-{kind}-*.npy*") if p.name.split("-")[-1].split(".")[0].isdigit()),
            key=lambda p: int(p.name.split("-")[-1].split(".")[0]),
        )
        if not paths:
            raise DataError(
                f"{self.name}: no {self.prefix}-{kind}-*.npy files in {str(folder)!r}. Put Design-Bench's "
                f"'{self.folder}/' folder under the data root (--data.data_root or $MATCHOPT_DATA_ROOT)"
            )
        expected = [int(p.name.split("-")[-1].split(".")[0]) for p in paths]
        if expected != list(range(len(paths))):
            missing = sorted(set(range(max(expected) + 1)) - set(expected))
            raise DataError(f"{self.name}: shard(s) {missing} of {self.prefix}-{kind} are missing in {str(folder)!r}")
        return paths

    def _full_data(self) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = self.shard_paths("x"), self.shard_paths("y")
        if len(xs) != len(ys):
            raise DataError(f"{self.name}: {len(xs)} x shards but {len(ys)} y shards in the data folder")
        x = np.concatenate([load_array(p).astype(np.uint8) for p in xs])
        y = np.concatenate([load_array(p).reshape(-1) for p in ys]).astype(np.float64)
        if len(x) != len(y):
            raise DataError(f"{self.name}: x has {len(x)} rows but y has {len(y)}; a shard is truncated")
        if x.ndim != 2 or x.shape[1] != self.length:
            raise DataError(f"{self.name}: x must be (N, {self.length}) tokens, got {x.shape}")
        check_finite(self.name, "y", y)  # before the percentile cut, which would silently drop NaN rows
        return x, y

    def _load(self) -> OfflineData:
        x, y = self._full_data()
        table = np.full(self.num_classes**self.length, np.nan)
        table[sequence_codes(x, self.num_classes)] = y  # numpy keeps the last write: Design-Bench's dict order
        self._table = table
        keep = percentile_band(y, self.min_percentile, self.max_percentile)
        return OfflineData(x=x[keep].astype(np.int64), y=y[keep], y_min=float(y.min()), y_max=float(y.max()))

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
