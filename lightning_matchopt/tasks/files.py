"""A user's own data: designs and scores from an NPZ or CSV file, with an optional oracle.

NPZ: arrays ``x`` (N, ...) and ``y`` (N,) or (N, 1). CSV: a header row, a ``y`` column (name set
by ``y_column``), every other column a design feature. Token designs (integers in
``[0, num_classes)``) are optimized as Design-Bench logits; others as z-scored vectors. The
oracle, if any, is ``package.module:function`` mapping an array of designs to an array of scores;
with a timeout (``search.oracle_timeout``) it runs in a fresh interpreter that can be stopped.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import ConfigError, DataError
from lightning_matchopt.tasks.base import OfflineData, Task, check_finite, percentile_band
from lightning_matchopt.user_oracle import load_oracle, run_in_subprocess


def read_design_file(
    path: str | os.PathLike, y_column: str = "y", require_y: bool = True
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Designs, scores (None when absent and not required) and CSV feature names from an NPZ or CSV file.

    The format of the ``files`` task, also read by ``matchopt predict``: NPZ arrays ``x`` and
    ``y``; or a CSV with a header row, ``y_column`` holding the scores and every other column a
    design feature.
    """
    path = Path(path).expanduser()
    if path.suffix not in (".npz", ".csv"):
        raise ConfigError(f"design file must be .npz (arrays x, y) or .csv, got {str(path)!r}")
    if not path.is_file():
        raise DataError(f"design file {str(path)!r} does not exist")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive:
                    raise DataError(f"{str(path)!r} has no array 'x'; save designs with np.savez(path, x=..., y=...)")
                if require_y and "y" not in archive:
                    raise DataError(f"{str(path)!r} has no array 'y'; save with np.savez(path, x=..., y=...)")
                return archive["x"], (archive["y"] if "y" in archive else None), None
        except (zipfile.BadZipFile, ValueError, OSError) as e:
            raise DataError(f"cannot read {str(path)!r} ({e}): not a valid .npz file") from None
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    if require_y and y_column not in header:
        raise DataError(
            f"{str(path)!r} has no {y_column!r} column (header: {header[:10]}); "
            "name the score column with task_options: {y_column: NAME}"
        )
    names = [h for h in header if h != y_column]
    if not names:
        raise DataError(f"{str(path)!r} needs at least one design column besides {y_column!r}")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as e:
        raise DataError(f"cannot parse {str(path)!r} as numbers: {e}") from None
    if table.shape[1] != len(header):
        raise DataError(f"{str(path)!r}: rows have {table.shape[1]} values but the header names {len(header)} columns")
    if y_column not in header:
        return table, None, names
    y_at = header.index(y_column)
    return np.delete(table, y_at, axis=1), table[:, y_at], names


class FilesTask(Task):
    """Offline data from a file.

    Args:
        path: an ``.npz`` (arrays ``x``, ``y``) or ``.csv`` file.
        num_classes: number of token values for integer designs; None for continuous designs.
        oracle: ``package.module:function`` that scores designs; None: designs are proposed and
            written with the surrogate's predictions, not scored.
        y_min, y_max: normalizers of reported scores; default: the offline data's min and max,
            so a score above 1 beats the best design in the data.
        y_column: the CSV column holding the scores.
        max_percentile: keep only designs at or below this percentile of the score (100: all).
    """

    name = "files"

    def __init__(
        self,
        path: str | os.PathLike,
        num_classes: int | None = None,
        oracle: str | None = None,
        y_min: float | None = None,
        y_max: float | None = None,
        y_column: str = "y",
        max_percentile: float = 100.0,
    ) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        if self.path.suffix not in (".npz", ".csv"):
            raise ConfigError(f"task file must be .npz (arrays x, y) or .csv, got {str(self.path)!r}")
        if not self.path.is_file():
            raise DataError(f"task file {str(self.path)!r} does not exist")
        if num_classes is not None and num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2 for token designs, got {num_classes}")
        if not 0 < max_percentile <= 100:
            raise ConfigError(f"max_percentile must be in (0, 100], got {max_percentile}")
        self.num_classes, self.y_column, self.max_percentile = num_classes, y_column, max_percentile
        self.y_min, self.y_max = y_min, y_max
        self._oracle = load_oracle(oracle) if oracle else None
        self.oracle_spec, self.timed_oracle = oracle, oracle is not None
        self._design_shape = self._read_design_shape()

    @property
    def design_shape(self) -> tuple[int, ...]:
        """The designs' shape, as read from the files."""
        return self._design_shape

    @property
    def column_names(self) -> list[str] | None:
        """A CSV's design column names (None for NPZ): the candidates and predictions tables reuse them."""
        return [h for h in self._csv_header() if h != self.y_column] if self.path.suffix == ".csv" else None

    @property
    def oracle_name(self) -> str:
        """The user's oracle, named by its spec in messages."""
        return f"the oracle {self.oracle_spec}" if self.oracle_spec else super().oracle_name

    def oracle_unavailable(self) -> str | None:
        """Why the designs cannot be scored (no oracle given), or None."""
        if self._oracle is None:
            return "files: no oracle given (data.task_options.oracle: 'package.module:function')"
        return None

    def _read_design_shape(self) -> tuple[int, ...]:
        """The shape of one design from the file's header only (cheap: runs in every DDP process)."""
        if self.path.suffix == ".csv":
            return (len(self._csv_header()) - 1,)
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open("x.npy") as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, _ = read_header(f)
        except KeyError:
            raise DataError(f"{str(self.path)!r} has no array 'x'; save designs with np.savez(path, x=..., y=...)") from None
        except (zipfile.BadZipFile, ValueError, OSError) as e:
            raise DataError(f"cannot read {str(self.path)!r} ({e}): not a valid .npz file") from None
        if len(shape) < 2:
            raise DataError(f"x in {str(self.path)!r} must be (N, ...) designs, got shape {shape}")
        return tuple(shape[1:])

    def _csv_header(self) -> list[str]:
        with open(self.path, newline="") as f:
            header = next(csv.reader(f), [])
        if self.y_column not in header:
            raise DataError(
                f"{str(self.path)!r} has no {self.y_column!r} column (header: {header[:10]}); "
                "name the score column with task_options: {y_column: NAME}"
            )
        if len(header) < 2:
            raise DataError(f"{str(self.path)!r} needs at least one design column besides {self.y_column!r}")
        return header

    def _load(self) -> OfflineData:
        x, y, _ = read_design_file(self.path, self.y_column)
        if self.num_classes is not None:
            if not np.array_equal(x, np.round(x)) or x.min() < 0 or x.max() >= self.num_classes:
                raise DataError(f"token designs must be integers in [0, {self.num_classes - 1}] (num_classes)")
            x = x.astype(np.int64)
        y = np.asarray(y, dtype=np.float64)
        y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1:
            raise DataError(f"{str(self.path)!r}: y must hold one score per design, got shape {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{str(self.path)!r}: x has {len(x)} rows but y has {len(y)}; they must match")
        check_finite(self.name, "y", y)  # before the percentile cut, which would drop NaN rows silently
        keep = percentile_band(y, 0.0, self.max_percentile) if self.max_percentile < 100 else np.ones(len(y), bool)
        y_min = float(np.min(y)) if self.y_min is None else self.y_min
        y_max = float(np.max(y)) if self.y_max is None else self.y_max
        return OfflineData(x=x[keep], y=y[keep], y_min=y_min, y_max=y_max)

    def _score(self, designs: np.ndarray, timeout: float | None = None) -> np.ndarray:
        if self._oracle is None:
            return np.full(len(designs), np.nan)
        if timeout is not None:
            return run_in_subprocess(self.oracle_spec, designs, timeout)
        return self._oracle(np.asarray(designs))
