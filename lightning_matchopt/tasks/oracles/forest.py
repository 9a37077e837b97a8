"""Superconductor's oracle: Design-Bench's random forest, re-fitted with scikit-learn and cached.

Design-Bench 2.0.20 (``Superconductor-RandomForest-v0``) builds it this way, and so do we:

- 2,000 rows drawn uniformly without replacement from ALL 21,263 rows (not only the offline 80%);
- x and y z-scored with those rows' mean and population std (a zero std becomes 1);
- half of them held out for validation (Spearman rank correlation; Design-Bench reports 0.9155),
  a ``RandomForestRegressor(n_estimators=100, max_depth=100, max_features="auto")`` fitted on
  the other 1,000 (``"auto"`` means all features for a regressor: ``max_features=1.0`` now);
- predictions z-scored back with the same statistics.

Differences: Design-Bench draws the 2,000 rows, the split and the trees without a seed and ships
a forest pickled by scikit-learn 0.23.1 (unreadable by current versions, and its server is gone);
here all three come from ``seed``, so the oracle is the same on every machine and run. Scores from
the two forests are on the same scale but not equal design by design.

The fitted forest is cached as a pickle with a sha256 sidecar. Its name carries a fingerprint of
the data, the seed, the hyperparameters and the scikit-learn version, so a change of any of them
refits instead of loading a stale forest. The checksum catches a truncated or corrupted file; it
is not a defence against someone who can write to the cache folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_matchopt.atomic import write_atomic

FOREST_PARAMS = {"n_estimators": 100, "max_depth": 100, "max_features": 1.0}
ORACLE_ROWS = 2000
VAL_FRACTION = 0.5
CACHE_ENV = "MATCHOPT_CACHE_DIR"


@dataclass
class ForestOracle:
    """A fitted forest and the z-score statistics it was fitted in."""

    forest: object
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    rank_correlation: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted critical temperatures (kelvin) of raw feature rows."""
        z = (np.asarray(x, dtype=np.float32) - self.x_mean) / self.x_std
        return self.forest.predict(z) * self.y_std + self.y_mean


def fit_forest(x: np.ndarray, y: np.ndarray, seed: int = 0) -> ForestOracle:
    """Fit the oracle on Design-Bench's 2,000-row sample of the full data (see the module docstring)."""
    from scipy.stats import spearmanr
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(ORACLE_ROWS, len(x)), replace=False)
    xs, ys = x[rows].astype(np.float32), y[rows].astype(np.float64)
    x_mean, x_std = xs.mean(0), xs.std(0)
    x_std[x_std == 0] = 1.0
    y_mean, y_std = float(ys.mean()), float(ys.std()) or 1.0
    xz, yz = (xs - x_mean) / x_std, (ys - y_mean) / y_std
    order = rng.permutation(len(rows))
    n_val = int(VAL_FRACTION * len(rows))
    val, train = order[:n_val], order[n_val:]
    forest = RandomForestRegressor(**FOREST_PARAMS, random_state=seed, n_jobs=-1).fit(xz[train], yz[train])
    forest.n_jobs = 1  # threads sum the trees in any order: serial prediction is bit-for-bit reproducible
    rank_correlation = float(spearmanr(forest.predict(xz[val]), yz[val]).statistic)
    return ForestOracle(forest, x_mean, x_std, y_mean, y_std, rank_correlation)


def fingerprint(x: np.ndarray, y: np.ndarray, seed: int) -> str:
    """Hash of everything the fitted forest depends on."""
    import sklearn

    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.float32).tobytes())
    recipe = {"params": FOREST_PARAMS, "rows": ORACLE_ROWS, "val": VAL_FRACTION, "seed": seed, "sklearn": sklearn.__version__}
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Where the fitted forest is cached: ``$MATCHOPT_CACHE_DIR``, else ``~/.cache/lightning_matchopt``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lightning_matchopt")


def load_or_fit_forest(
    x: np.ndarray, y: np.ndarray, seed: int, cache_dir: str | os.PathLike | None = None
) -> ForestOracle:
    """The cached forest for this data and seed, or a new one fitted and cached.

    Kept in ``cache_dir`` (default ``$MATCHOPT_CACHE_DIR`` or ``~/.cache/lightning_matchopt``),
    never beside the data: a data root is the user's, and is only ever read.
    """
    name = f"matchopt-forest-{fingerprint(x, y, seed)[:20]}.pkl"
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    oracle = _read_verified(folder / name)
    if oracle is not None:
        return oracle
    oracle = fit_forest(x, y, seed)
    payload = pickle.dumps(oracle, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        _write_atomic(folder / name, payload)
        _write_atomic(folder / (name + ".sha256"), hashlib.sha256(payload).hexdigest().encode())
    except OSError as e:
        warnings.warn(f"superconductor: could not cache the fitted forest in {folder} ({e}); "
                      f"set {CACHE_ENV} to a writable folder", stacklevel=2)
    else:
        print(f"superconductor: fitted the random-forest oracle (validation Spearman "
              f"{oracle.rank_correlation:.4f}); cached in {folder}")
    return oracle


def _read_verified(path: Path) -> ForestOracle | None:
    sidecar = path.with_name(path.name + ".sha256")
    if not path.is_file():
        return None
    payload = path.read_bytes()
    expected = sidecar.read_text().strip() if sidecar.is_file() else None
    if expected != hashlib.sha256(payload).hexdigest():
        warnings.warn(f"superconductor: cached forest {str(path)!r} fails its checksum; fitting a new one", stacklevel=3)
        return None
    oracle = pickle.load(io.BytesIO(payload))
    return oracle if isinstance(oracle, ForestOracle) else None


def _write_atomic(path: Path, payload: bytes) -> None:
    write_atomic(path, lambda f: f.write(payload))
