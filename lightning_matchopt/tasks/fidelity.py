"""How well this project's oracle reproduces the scores stored with a task's offline designs.

``matchopt data check --oracle TASK`` runs :func:`measure` and prints :func:`report`: a sample of
the offline designs (the rows Design-Bench's percentile cut keeps) is scored with the task's
oracle and compared with the stored y: Spearman rank correlation, mean absolute error (in the
task's score units and normalized by the full data's y range) and the worst rows. A user sees
before a long run how comparable their scores will be with the stored (and published) ones.
``benchmarks/oracle_fidelity.py`` uses the same functions for its table.

Light on purpose (numpy only); the oracle imports what it needs when it first runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lightning_matchopt.errors import DataError
from lightning_matchopt.tasks.base import percentile_band

# Oracles that are not an exact lookup of the stored scores, and the sample each checks by default:
# the forest scores thousands of rows a second; Hopper runs an episode and Ant a 100-step
# rollout per design (seconds each on a CPU).
DEFAULT_SAMPLE = {"superconductor": 2000, "hopper": 32, "ant": 32, "dkitty": 32}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties get their average rank, as scipy's ``spearmanr``)."""
    ranks = [_ranks(np.asarray(v, dtype=np.float64).reshape(-1)) for v in (a, b)]
    if len(ranks[0]) < 2 or ranks[0].std() == 0 or ranks[1].std() == 0:
        return float("nan")
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


@dataclass
class Fidelity:
    """The comparison of oracle and stored scores on the sampled rows.

    Attributes:
        task: task name.
        rows: offline rows the sample was drawn from.
        index: the sampled rows' indices in the task's files (all shards in order).
        stored, oracle: their stored scores and the oracle's.
        score_range: ``y_max - y_min`` of the full data (the normalizer).
        seconds: time the oracle took.
        notes: what else is known of the oracle (e.g. the forest's held-out Spearman).
    """

    task: str
    rows: int
    index: np.ndarray
    stored: np.ndarray
    oracle: np.ndarray
    score_range: float
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def spearman(self) -> float:
        """Spearman of oracle and stored scores."""
        return spearman(self.oracle, self.stored)

    @property
    def mae(self) -> float:
        """Mean absolute error, in the task's score units."""
        return float(np.abs(self.oracle - self.stored).mean())

    def worst(self, k: int = 5) -> list[tuple[int, float, float]]:
        """The ``k`` rows with the largest absolute error: (index in the files, stored, oracle)."""
        order = np.argsort(-np.abs(self.oracle - self.stored), kind="stable")[:k]
        return [(int(self.index[i]), float(self.stored[i]), float(self.oracle[i])) for i in order]


def measure(task, n: int | None = None, seed: int = 0) -> Fidelity:
    """Score ``n`` offline designs of a continuous Design-Bench task with its oracle.

    Args:
        task: a task with ``full_data()`` and a ``max_percentile`` cut (Superconductor, Hopper, Ant, D'Kitty).
        n: rows to sample (without replacement; all offline rows if larger); None: the task's default.
        seed: seed of the sample.

    Raises:
        DataError: the task has no such oracle, or the oracle cannot run here (one line: what it needs).
    """
    name = task.name
    if name not in DEFAULT_SAMPLE:
        raise DataError(
            f"--oracle {name}: only {', '.join(DEFAULT_SAMPLE)} have an oracle that can differ from the stored "
            "scores (TF-Bind's is a lookup of them: benchmarks/oracle_fidelity.py counts the rows it reproduces)"
        )
    if n is not None and n < 2:
        raise DataError(f"--n {n}: sample at least 2 rows (a rank correlation needs two)")
    x, y = task.full_data()
    offline = np.flatnonzero(percentile_band(y, 0.0, task.max_percentile))
    why = task.oracle_unavailable()
    if why:
        raise DataError(f"{why} (the fidelity check runs the oracle)")
    n = DEFAULT_SAMPLE[name] if n is None else n
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(offline, size=min(n, len(offline)), replace=False))
    start = time.perf_counter()
    scores = np.asarray(task.oracle(x[index]), dtype=np.float64).reshape(-1)
    seconds = time.perf_counter() - start
    notes = []
    forest = getattr(task, "_forest", None)
    if forest is not None:
        notes.append(
            f"the forest's held-out Spearman on its own 1,000 validation rows: {forest.rank_correlation:.4f} "
            "(Design-Bench reports 0.9155 for its forest)"
        )
    return Fidelity(
        task=name,
        rows=len(offline),
        index=index,
        stored=y[index].astype(np.float64),
        oracle=scores,
        score_range=float(y.max() - y.min()),
        seconds=seconds,
        notes=notes,
    )


def report(f: Fidelity, seed: int, worst: int = 5) -> str:
    """The lines ``matchopt data check --oracle`` prints."""
    lines = [
        f"{f.task}: oracle vs stored scores on {len(f.index)} of {f.rows} offline designs (seed {seed}, "
        f"oracle {f.seconds:.1f} s)",
        f"  Spearman             {f.spearman:.4f}",
        f"  mean absolute error  {f.mae:.4g} (score units), {f.mae / f.score_range:.4f} (normalized by the "
        f"full data's range {f.score_range:.6g})",
        *[f"  {note}" for note in f.notes],
        f"  worst {min(worst, len(f.index))} rows:",
        f"  {'index':>8} {'stored':>12} {'oracle':>12} {'error':>12}",
    ]
    for index, stored, oracle in f.worst(worst):
        lines.append(f"  {index:>8} {stored:>12.6g} {oracle:>12.6g} {oracle - stored:>+12.6g}")
    return "\n".join(lines)
