"""Design-Bench's continuous tasks, read from its own files: Superconductor, Hopper, Ant, D'Kitty.

Their oracles are re-created with maintained packages (:mod:`lightning_matchopt.tasks.oracles`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from lightning_matchopt.errors import DataError, OracleError
from lightning_matchopt.extras import missing
from lightning_matchopt.tasks.base import (
    DATA_ROOT_ENV,
    OfflineData,
    Task,
    check_finite,
    load_array,
    percentile_band,
)
from lightning_matchopt.tasks.design_bench import shard_paths


class ContinuousDesignBenchTask(Task):
    """A Design-Bench task whose designs are float vectors stored as ``(N, dim)`` float32 shards.

    The offline set is the rows with ``y <= percentile(y, max_percentile)`` over ALL rows, in
    file order (Design-Bench's ``subsample``); ``y_min`` / ``y_max`` are the full data's.
    ``published_y_range`` is the normalizer others report for the original files: files whose
    range differs are not the original data, and a warning says so.
    """

    folder: str
    prefix: str
    dim: int
    max_percentile: float = 100.0
    published_y_range: tuple[float, float]

    def __init__(self, data_root: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.data_root = data_root
        self._full: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def design_shape(self) -> tuple[int, ...]:
        """Designs are flat vectors of ``dim`` features."""
        return (self.dim,)

    def full_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row of the files: float32 designs ``(N, dim)`` and float32 scores ``(N,)``."""
        if self._full is None:
            xs = shard_paths(self.name, self.data_root, self.folder, self.prefix, "x")
            ys = shard_paths(self.name, self.data_root, self.folder, self.prefix, "y")
            if len(xs) != len(ys):
                raise DataError(f"{self.name}: {len(xs)} x shards but {len(ys)} y shards in the data folder")
            x_parts, y_parts = [], []
            for x_path, y_path in zip(xs, ys, strict=True):
                x, y = load_array(x_path), load_array(y_path)
                if x.ndim != 2 or x.shape[1] != self.dim:
                    raise DataError(f"{self.name}: {x_path.name} must hold (N, {self.dim}) designs, got {x.shape}")
                if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != 1):
                    raise DataError(f"{self.name}: {y_path.name} must hold (N, 1) scores, got {y.shape}")
                if len(x) != len(y):
                    raise DataError(f"{self.name}: {x_path.name} has {len(x)} rows but {y_path.name} has {len(y)}")
                x_parts.append(x.astype(np.float32, copy=False))
                y_parts.append(y.reshape(-1).astype(np.float32, copy=False))
            x, y = np.concatenate(x_parts), np.concatenate(y_parts)
            check_finite(self.name, "x", x)
            check_finite(self.name, "y", y)  # before the percentile cut, which would silently drop NaN rows
            low, high = self.published_y_range
            if not np.allclose([y.min(), y.max()], [low, high], rtol=1e-5, atol=1e-6):
                warnings.warn(
                    f"{self.name}: the files' score range [{y.min():.6g}, {y.max():.6g}] is not Design-Bench's "
                    f"[{low}, {high}]: these are not the original files; scores are normalized with the files' range",
                    stacklevel=2,
                )
            self._full = (x, y)
        return self._full

    def _load(self) -> OfflineData:
        x, y = self.full_data()
        rows = np.flatnonzero(percentile_band(y, 0.0, self.max_percentile))
        return OfflineData(x=x[rows], y=y[rows].astype(np.float64), y_min=float(y.min()), y_max=float(y.max()))


class Superconductor(ContinuousDesignBenchTask):
    """Superconductor (``Superconductor-RandomForest-v0``): 86 element fractions -> critical temperature (K).

    21,263 materials in 5 shards; the offline set is the bottom 80%. The oracle is Design-Bench's
    random forest re-fitted with scikit-learn (same hyperparameters and training split; see
    :mod:`lightning_matchopt.tasks.oracles.forest`), fitted once and cached with a checksum.

    Args:
        data_root: folder holding ``superconductor/``.
        oracle_seed: seed of the forest's 2,000-row sample, split and trees.
        cache_dir: where the fitted forest is kept (default: ``$MATCHOPT_CACHE_DIR`` or
            ``~/.cache/lightning_matchopt``; never the data root, which is only read).
    """

    name = "superconductor"
    folder = "superconductor"
    prefix = "superconductor"
    dim = 86
    max_percentile = 80.0
    published_y_range = (0.00021, 185.0)

    def __init__(
        self, data_root: str | os.PathLike | None = None, oracle_seed: int = 0, cache_dir: str | None = None
    ) -> None:
        super().__init__(data_root)
        self.oracle_seed, self.cache_dir = oracle_seed, cache_dir
        self._forest = None

    def oracle_unavailable(self) -> str | None:
        """Why the forest oracle cannot run (scikit-learn missing), or None."""
        why = missing("sklearn", extra="oracles")
        return f"superconductor: the oracle {why}" if why else None

    @property
    def forest(self):
        """The fitted random-forest oracle (loaded from its cache, or fitted and cached on first use)."""
        if self._forest is None:
            from lightning_matchopt.tasks.oracles.forest import load_or_fit_forest

            x, y = self.full_data()
            self._forest = load_or_fit_forest(x, y, self.oracle_seed, self.cache_dir)
        return self._forest

    def _score(self, designs: np.ndarray) -> np.ndarray:
        return self.forest.predict(np.asarray(designs, dtype=np.float32).reshape(len(designs), self.dim))


class HopperController(ContinuousDesignBenchTask):
    """Hopper controller (``HopperController-Exact-v0``): the 5,126 weights of a fixed policy network.

    3,200 policies in one shard, all of them offline. The oracle runs the policy for one episode
    (up to 1,000 steps) in gymnasium's MuJoCo ``Hopper-v5`` and returns its return; see
    :mod:`lightning_matchopt.tasks.oracles.hopper` for every difference from Design-Bench's
    mujoco-py ``Hopper-v2``.

    Args:
        data_root: folder holding ``hopper_controller/``.
        workers: processes that run episodes in parallel (default: all CPU cores, at most 8).
        seed: seed of the environment's reset noise (the same start state for every design).
    """

    name = "hopper"
    folder = "hopper_controller"
    prefix = "hopper_controller"
    dim = 5126
    max_percentile = 100.0
    published_y_range = (87.93491, 1361.6106)
    timed_oracle = True

    def __init__(self, data_root: str | os.PathLike | None = None, workers: int | None = None, seed: int = 0) -> None:
        super().__init__(data_root)
        if workers is not None and workers < 1:
            raise DataError(f"hopper: workers must be >= 1 or null, got {workers}")
        self.workers, self.seed = workers, seed

    def oracle_unavailable(self) -> str | None:
        """Why the MuJoCo oracle cannot run (MuJoCo or gymnasium missing), or None."""
        from lightning_matchopt.tasks.oracles import mujoco_missing

        return mujoco_missing(self.name)

    def _score(self, designs: np.ndarray, timeout: float | None = None) -> np.ndarray:
        from lightning_matchopt.tasks.oracles.hopper import evaluate_policies

        designs = np.asarray(designs, dtype=np.float64)
        return evaluate_policies(designs, workers=self.workers, seed=self.seed, timeout=timeout)


class MorphologyTask(ContinuousDesignBenchTask):
    """A morphology task: four legs' geometry and joint ranges, scored by a pre-trained walking policy.

    Design-Bench's exact oracle rolls out a morphology-conditioned policy it trained itself
    (``<folder>/<policy_file>``, a pickled dict of numpy arrays) on the robot built from the
    design. ``matchopt data fetch`` gets it with the data; without it the task trains and
    searches but cannot score, and says so before training.
    """

    policy_file: str

    def __init__(self, data_root: str | os.PathLike | None = None, policy_path: str | None = None) -> None:
        super().__init__(data_root)
        self.policy_path = policy_path

    def _policy_location(self) -> Path | None:
        if self.policy_path is not None:
            return Path(self.policy_path).expanduser()
        root = self.data_root if self.data_root is not None else os.environ.get(DATA_ROOT_ENV)
        return None if root is None else Path(root).expanduser() / self.folder / self.policy_file

    def _missing_policy(self) -> str | None:
        path = self._policy_location()
        if path is not None and path.is_file():
            return None
        where = f"not found at {str(path)!r}" if path is not None else "no data root given"
        return (
            f"{self.name}: the oracle needs Design-Bench's pre-trained policy '{self.folder}/{self.policy_file}' "
            f"({where}); fetch it with the data (matchopt data fetch --data-root DIR {self.name}) "
            "or pass --data.task_options.policy_path FILE"
        )


class AntMorphology(MorphologyTask):
    """Ant morphology (``AntMorphology-Exact-v0``): 4 legs x 15 parameters (60 floats).

    25,009 morphologies in one shard; the offline set is the bottom 40%. The oracle builds the
    Ant from the design with ``mujoco`` (:mod:`lightning_matchopt.tasks.oracles.morphology`) and
    rolls out Design-Bench's policy ``ant_morphology/ant_oracle.pkl`` for 100 steps.
    """

    name = "ant"
    folder = "ant_morphology"
    prefix = "ant_morphology"
    dim = 60
    max_percentile = 40.0
    published_y_range = (-386.90036, 590.24445)
    policy_file = "ant_oracle.pkl"

    def oracle_unavailable(self) -> str | None:
        """Why the Ant oracle cannot run (its policy or MuJoCo missing), or None."""
        from lightning_matchopt.tasks.oracles import mujoco_missing

        return self._missing_policy() or mujoco_missing(self.name)

    def _score(self, designs: np.ndarray) -> np.ndarray:
        from lightning_matchopt.tasks.oracles.morphology import ant_returns

        return ant_returns(np.asarray(designs, dtype=np.float64), self._policy_location())


class DKittyMorphology(MorphologyTask):
    """D'Kitty morphology (``DKittyMorphology-Exact-v0``): 4 legs x 14 parameters (56 floats).

    25,009 morphologies in one shard; the offline set is the bottom 40%. Its exact oracle edits
    ROBEL's D'Kitty model (``robel/dkitty/assets``, which needs mujoco-py and MuJoCo 2.0) and
    rolls out Design-Bench's policy ``dkitty_morphology/dkitty_oracle.pkl``. This version reads
    the data and trains; it does not re-create that oracle, and says so in one line.
    """

    name = "dkitty"
    folder = "dkitty_morphology"
    prefix = "dkitty_morphology"
    dim = 56
    max_percentile = 40.0
    published_y_range = (-880.4585, 340.90985)
    policy_file = "dkitty_oracle.pkl"

    def oracle_unavailable(self) -> str | None:
        """D'Kitty's oracle is not re-created here: always the reason."""
        missing = self._missing_policy()
        if missing:
            return missing + "; it also needs ROBEL's D'Kitty model (robel/dkitty/assets), not re-created here"
        return (
            "dkitty: the oracle needs ROBEL's D'Kitty walking environment (model and meshes in the robel 0.1.2 "
            "source package, written for mujoco-py and MuJoCo 2.0); this version does not re-create it, so "
            "D'Kitty designs are saved unscored"
        )

    def _score(self, designs: np.ndarray) -> np.ndarray:
        raise OracleError(self.oracle_unavailable())
