"""The Task interface: offline designs and scores, an oracle, and the design <-> feature maps.

Tasks know nothing of Lightning. Construction is cheap (no file is read) so that LightningCLI can
build one in every DDP process and read ``input_dim``; ``data`` loads on first use.
"""

from __future__ import annotations

import abc
import gzip
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import DataError, OracleError

DATA_ROOT_ENV = "MATCHOPT_DATA_ROOT"


@dataclass(frozen=True)
class OfflineData:
    """The offline dataset a task hands to training.

    Attributes:
        x: designs in the task's own format: int tokens ``(N, L)`` or floats ``(N, d)``.
        y: scores ``(N,)``, float64.
        y_min: minimum score of the task's FULL data (Design-Bench's normalizer).
        y_max: maximum score of the task's FULL data.
    """

    x: np.ndarray
    y: np.ndarray
    y_min: float
    y_max: float


def to_logits(tokens: np.ndarray, num_classes: int, soft_interpolation: float = 0.6) -> np.ndarray:
    """Design-Bench's ``to_logits``: one-hot mixed with uniform, log, minus the first class.

    Returns float32 ``(N, L, num_classes - 1)``.
    """
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= num_classes):
        raise DataError(f"tokens must lie in [0, {num_classes - 1}], got [{tokens.min()}, {tokens.max()}]")
    one_hot = np.eye(num_classes, dtype=np.float64)[tokens]
    soft = soft_interpolation * one_hot + (1.0 - soft_interpolation) / num_classes
    log_p = np.log(soft)
    return (log_p[..., 1:] - log_p[..., :1]).astype(np.float32)


def to_tokens(logits: np.ndarray) -> np.ndarray:
    """Design-Bench's ``to_integers``: prepend the dropped class's zero logit, then argmax."""
    logits = np.asarray(logits)
    padded = np.concatenate([np.zeros(logits.shape[:-1] + (1,), logits.dtype), logits], axis=-1)
    return padded.argmax(axis=-1).astype(np.int64)


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """The data root from the argument or ``$MATCHOPT_DATA_ROOT``, checked to exist."""
    root = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV)
    if root is None:
        raise DataError(
            f"no data root given: pass --data.data_root DIR (the folder holding Design-Bench's "
            f"data folders) or set {DATA_ROOT_ENV}"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"data root {str(path)!r} is not a directory: check --data.data_root / {DATA_ROOT_ENV}")
    return path


def load_array(path: Path) -> np.ndarray:
    """Load a ``.npy`` (or gzip-compressed ``.npy.gz``) file with a clear error if it is unreadable."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return np.load(io.BytesIO(f.read()), allow_pickle=False)
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"missing data file {str(path)!r}") from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(
            f"cannot read {str(path)!r} ({e}): the file is truncated or not a NumPy array; "
            "fetch a fresh copy (matchopt data check / fetch)"
        ) from None


def percentile_band(y: np.ndarray, min_percentile: float, max_percentile: float) -> np.ndarray:
    """Row mask of Design-Bench's ``subsample``: ``percentile(y, lo) <= y <= percentile(y, hi)``."""
    lower, upper = np.percentile(y, min_percentile), np.percentile(y, max_percentile)
    return (y >= lower) & (y <= upper)


def check_finite(task_name: str, label: str, array: np.ndarray) -> None:
    """Raise a DataError naming the rows of ``array`` that hold NaN or inf."""
    bad = ~np.isfinite(np.asarray(array, dtype=np.float64))
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise DataError(
            f"{task_name}: {label} has NaN or inf in {len(rows)} rows (first: {rows[:5].tolist()}); "
            "drop or fix those rows"
        )


class Task(abc.ABC):
    """An offline optimization problem: offline data, an oracle, and the design feature map.

    Subclasses set ``name`` and ``design_shape`` (and ``num_classes`` for token designs) and
    implement ``_load`` and ``_score``.
    """

    name: str = "task"
    num_classes: int | None = None
    soft_interpolation: float = 0.6
    # Draws of 128 uniformly random designs scored for the "random designs" reference row; 0 where
    # the oracle is too costly (a simulator) or someone else's (a user's lab pipeline).
    random_reference_draws: int = 0
    # The law those designs are drawn from (``random_designs``), recorded with the reference in
    # results.json and named wherever it is shown.
    random_designs_law: str = "uniform over the design space"
    timed_oracle: bool = False  # the oracle runs in other processes, which a timeout can stop

    def __init__(self) -> None:
        self._data: OfflineData | None = None

    @property
    @abc.abstractmethod
    def design_shape(self) -> tuple[int, ...]:
        """Shape of one design: ``(L,)`` tokens or ``(d,)`` floats."""

    @property
    def is_discrete(self) -> bool:
        """Whether designs are token sequences optimized as logits."""
        return self.num_classes is not None

    @property
    def has_oracle(self) -> bool:
        """Whether designs can be scored here (a user's own data or a missing policy file: no)."""
        return self.oracle_unavailable() is None

    def oracle_unavailable(self) -> str | None:
        """Why the oracle cannot run here, in one line (what is missing and how to supply it); None if it can.

        Cheap (reads no data): the search asks before training so that a missing oracle is known
        at once. Without an oracle the search still writes its designs and the surrogate's
        predictions, unscored (NaN).
        """
        return None

    def use_run_seed(self, seed: int) -> None:  # noqa: B027 (a hook most tasks leave empty)
        """The run's seed, for tasks whose offline data is a per-run draw; most tasks ignore it."""

    def random_designs(self, n: int, generator: np.random.Generator) -> np.ndarray | None:
        """``n`` designs drawn uniformly from the design space, or None where it has no natural uniform law.

        Real vectors without bounds have none; for token designs every token is uniform. The
        "random designs" reference draws from here; a task with a generator of its own (``ehrlich``:
        its feasible sequences) draws from that instead.
        """
        if not self.is_discrete:
            return None
        return generator.integers(0, self.num_classes, size=(n, *self.design_shape))

    @property
    def input_dim(self) -> int:
        """Width of the surrogate's input: logits for token designs, the flat design otherwise."""
        width = math.prod(self.design_shape)
        return width * (self.num_classes - 1) if self.is_discrete else width

    @property
    def data(self) -> OfflineData:
        """The offline data, loaded and validated on first access."""
        if self._data is None:
            self._data = self._validate(self._load())
        return self._data

    @abc.abstractmethod
    def _load(self) -> OfflineData:
        """Read the offline data."""

    @abc.abstractmethod
    def _score(self, designs: np.ndarray) -> np.ndarray:
        """The oracle on designs in the task's format; one score per design."""

    @property
    def oracle_name(self) -> str:
        """How error messages name this task's oracle."""
        return f"the {self.name} oracle"

    def oracle(self, designs: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """Score designs with the task's oracle; NaN: it could not score the design, -inf: the design is infeasible.

        An oracle's own NaN and +inf are failures (NaN); its -inf (LaMBO's convention for a
        sequence that cannot exist) is kept: the scores count it as the worst design.

        ``timeout`` (seconds) bounds an oracle that runs in other processes (``timed_oracle``):
        those are stopped and an OracleError raised. An in-process oracle cannot be stopped
        safely, so it runs without a limit.
        """
        if not self.has_oracle:
            return np.full(len(designs), np.nan)
        scores = self._score(designs, timeout) if self.timed_oracle else self._score(designs)
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape not in ((len(designs),), (len(designs), 1)):
            raise OracleError(
                f"{self.name} oracle returned shape {scores.shape} for {len(designs)} designs; "
                f"it must return one score per design, shape ({len(designs)},)"
            )
        scores = scores.reshape(-1)
        scores[np.isnan(scores) | np.isposinf(scores)] = np.nan  # -inf stays: infeasible
        return scores

    def to_features(self, designs: np.ndarray) -> np.ndarray:
        """Designs -> float32 surrogate inputs ``(N, input_dim)`` (logits for token designs)."""
        designs = np.asarray(designs)
        if self.is_discrete:
            designs = to_logits(designs, self.num_classes, self.soft_interpolation)
        return designs.reshape(len(designs), -1).astype(np.float32)

    def from_features(self, features: np.ndarray) -> np.ndarray:
        """Surrogate inputs -> designs in the task's format (argmax tokens for token designs)."""
        features = np.asarray(features)
        if self.is_discrete:
            return to_tokens(features.reshape((len(features),) + self.design_shape + (self.num_classes - 1,)))
        return features.reshape((len(features),) + self.design_shape)

    def normalize_score(self, y: np.ndarray) -> np.ndarray:
        """Design-Bench's normalized score, ``(y - y_min) / (y_max - y_min)`` over the full data."""
        data = self.data
        return (np.asarray(y, dtype=np.float64) - data.y_min) / (data.y_max - data.y_min)

    def _validate(self, data: OfflineData) -> OfflineData:
        x, y = np.asarray(data.x), np.asarray(data.y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(f"{self.name}: y must hold one score per design, got shape {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{self.name}: x has {len(x)} rows but y has {len(y)}; they must match row for row")
        if x.shape[1:] != self.design_shape:
            raise DataError(f"{self.name}: designs have shape {x.shape[1:]}, expected {self.design_shape}")
        if self.is_discrete and not np.issubdtype(x.dtype, np.integer):
            raise DataError(f"{self.name}: token designs must be integers, got dtype {x.dtype}")
        check_finite(self.name, "x", x)
        check_finite(self.name, "y", y)
        if len(y) < 2 or np.ptp(y) == 0:
            raise DataError(f"{self.name}: y is constant ({len(y)} rows); scores must vary to train a surrogate")
        if not data.y_max > data.y_min:
            raise DataError(f"{self.name}: y_max ({data.y_max}) must exceed y_min ({data.y_min})")
        return OfflineData(x=x, y=y, y_min=float(data.y_min), y_max=float(data.y_max))
