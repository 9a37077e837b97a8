import gzip

import numpy as np
import pytest
import torch

from lightning_matchopt.errors import ConfigError, DataError, OracleError
from lightning_matchopt.tasks import Shekel, TFBind8, TFBind10, make_task, to_logits, to_tokens
from lightning_matchopt.tasks.design_bench import decode_sequences, last_score_table, sequence_codes
from lightning_matchopt.tasks.synthetic import Ackley, Rosenbrock


def test_logits_follow_design_bench_and_round_trip():
    tokens = np.random.default_rng(0).integers(0, 4, size=(50, 8))
    logits = to_logits(tokens, 4)
    assert logits.shape == (50, 8, 3) and logits.dtype == np.float32
    # soft one-hot: 0.7 on the true class, 0.1 elsewhere; minus the first class's log-probability
    assert np.allclose(to_logits(np.array([[0, 2]]), 4)[0], [[np.log(1 / 7)] * 3, [0, np.log(7), 0]])
    assert np.array_equal(to_tokens(logits), tokens)


def test_tfbind8_reproduces_design_bench(tfbind8):
    data = tfbind8.data
    assert data.x.shape == (32898, 8) and tfbind8.input_dim == 24
    assert (data.y <= 0.43929616 + 1e-7).all() and data.y.max() == pytest.approx(0.43929616)
    assert (data.y_min, data.y_max) == (0.0, 1.0)
    assert np.array_equal(tfbind8.oracle(data.x), data.y)  # exact oracle = the stored table
    full_x = np.load(tfbind8.shard_paths("x")[0])
    full_y = np.load(tfbind8.shard_paths("y")[0])[:, 0]
    best = full_y.argmax()
    assert tfbind8.oracle(full_x[best : best + 1])[0] == full_y[best] == 1.0
    assert tfbind8.normalize_score(np.array([0.4393])) == pytest.approx([0.4393])
    features = tfbind8.to_features(data.x[:5])
    assert features.shape == (5, 24) and np.array_equal(tfbind8.from_features(features), data.x[:5])


def test_missing_and_corrupt_files_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("MATCHOPT_DATA_ROOT", raising=False)
    with pytest.raises(DataError, match="no data root given"):
        TFBind8(None).data  # noqa: B018
    with pytest.raises(DataError, match="is not a directory"):
        TFBind8(tmp_path / "nope").data  # noqa: B018
    with pytest.raises(DataError, match="tf_bind_8-SIX6_REF_R1/' folder under the data root"):
        TFBind8(tmp_path).data  # noqa: B018
    folder = tmp_path / "tf_bind_8-SIX6_REF_R1"
    folder.mkdir()
    np.save(folder / "tf_bind_8-x-0.npy", np.zeros((10, 8), np.int32))
    (folder / "tf_bind_8-y-0.npy").write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(DataError, match="truncated or not a NumPy array"):
        TFBind8(tmp_path).data  # noqa: B018
    np.save(folder / "tf_bind_8-y-0.npy", np.zeros((9, 1), np.float32))
    with pytest.raises(DataError, match="tf_bind_8-x-0.npy has 10 rows but tf_bind_8-y-0.npy has 9"):
        TFBind8(tmp_path).data  # noqa: B018
    y = np.linspace(0, 1, 10, dtype=np.float32)[:, None]
    y[3] = np.nan
    np.save(folder / "tf_bind_8-y-0.npy", y)
    with pytest.raises(DataError, match="NaN or inf in 1 rows"):
        TFBind8(tmp_path).data  # noqa: B018
    np.save(folder / "tf_bind_8-y-0.npy", np.ones((10, 1), np.float32))
    with pytest.raises(DataError, match="y is constant"):
        TFBind8(tmp_path).data  # noqa: B018


def test_registry_names_known_tasks():
    known = ("ackley, ant, dkitty, ehrlich, files, hopper, linear, quadratic, rosenbrock, shekel, superconductor, "
             "tfbind10, tfbind8")
    with pytest.raises(ConfigError, match=f"unknown task 'tfbind9'; known tasks: {known}"):
        make_task("tfbind9")
    assert isinstance(make_task("TFBind8-Exact-v0", data_root="x"), TFBind8)
    with pytest.raises(ConfigError, match="bad options for task 'shekel'"):
        make_task("shekel", colour="red")


@pytest.mark.parametrize("task", [Shekel(), Ackley(dim=5), Rosenbrock(dim=6)])
def test_synthetic_gradients_match_finite_differences(task):
    x = torch.from_numpy(task.data.x[:4]).double()
    grad = task.gradient(x)
    eps = 1e-6
    for j in range(task.dim):
        step = torch.zeros_like(x)
        step[:, j] = eps
        numeric = (task.value(x + step) - task.value(x - step)) / (2 * eps)
        assert torch.allclose(grad[:, j], numeric, rtol=1e-4, atol=1e-6)


def test_synthetic_offline_set_is_the_bottom_half_and_normalized_to_the_optimum():
    task = Shekel(n_samples=1000)
    assert len(task.data.x) == 500
    assert task.normalize_score(task.oracle(np.array([Shekel.OPTIMIZER])))[0] == pytest.approx(1.0)
    assert task.normalize_score(np.array([task.data.y_min]))[0] == 0.0


def test_oracle_shape_and_nan_are_reported():
    class Broken(Shekel):
        def _score(self, designs):
            return np.zeros((len(designs), 2))

    with pytest.raises(OracleError, match=r"returned shape \(3, 2\) for 3 designs"):
        Broken().oracle(np.zeros((3, 4)))

    class Partial(Shekel):
        def _score(self, designs):
            out = super()._score(designs)
            out[1] = np.nan
            return out

    scores = Partial().oracle(np.full((3, 4), 4.0))
    assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all()


def test_last_score_table_keeps_the_last_row_like_design_bench():
    codes = np.array([5, 2, 5, 7, 2, 5])
    y = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    table = last_score_table(codes, y, 8)
    assert table[5] == 0.6 and table[2] == 0.5 and table[7] == 0.4 and np.isnan(table[[0, 1, 3, 4, 6]]).all()
    tokens = np.random.default_rng(0).integers(0, 4, size=(20, 10))
    assert np.array_equal(decode_sequences(sequence_codes(tokens, 4), 10, 4), tokens)


def write_gz(path, array):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    path.write_bytes(gzip.compress(buffer.getvalue()))


def test_tfbind10_layout_on_synthetic_shards(tmp_path):
    """Design-Bench's sharded, gzip-stored layout: shards in numeric order, last row wins."""
    folder = tmp_path / "tf_bind_10-pho4"
    folder.mkdir()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(300, 10)).astype(np.int32)
    x[250] = x[10]  # measured twice: the later row (shard 2) must win
    y = rng.normal(size=(300, 1)).astype(np.float32)
    for i, part in enumerate(range(0, 300, 100)):  # 3 shards; names 0, 1, 2 (sorted numerically, not as text)
        write_gz(folder / f"tf_bind_10-x-{i}.npy.gz", x[part : part + 100])
        write_gz(folder / f"tf_bind_10-y-{i}.npy.gz", y[part : part + 100])
    task = TFBind10(tmp_path, subsample=50, subsample_seed=1)
    assert task.data.x.shape == (50, 10) and task.input_dim == 30
    assert task.data.y.max() <= np.percentile(y, 50) + 1e-6
    assert task.oracle(x[10:11])[0] == y[250, 0]
    assert (task.data.y_min, task.data.y_max) == (float(y.min()), float(y.max()))
    assert np.array_equal(TFBind10(tmp_path, subsample=50, subsample_seed=1).data.x, task.data.x)
    per_run = []  # subsample_seed null (the official protocol): each run's seed draws its own rows
    for run_seed in (0, 1, 1):
        run_task = TFBind10(tmp_path, subsample=50, subsample_seed=None)
        run_task.use_run_seed(run_seed)
        per_run.append(run_task.data.x)
    assert not np.array_equal(per_run[0], per_run[1]) and np.array_equal(per_run[1], per_run[2])
    (folder / "tf_bind_10-y-1.npy.gz").unlink()
    with pytest.raises(DataError, match=r"shard\(s\) \[1\] of tf_bind_10-y are missing"):
        TFBind10(tmp_path).data  # noqa: B018


@pytest.mark.slow  # reads and subsamples the real TF-Bind-10 files
def test_tfbind10_real_data(data_root):
    if not (data_root / "tf_bind_10-pho4").is_dir():
        pytest.skip("TF-Bind-10 shards not present")
    task = TFBind10(data_root)  # paper protocol: 10,000 random rows of the bottom 50%
    data = task.data
    assert data.x.shape == (10000, 10) and task.input_dim == 30
    assert data.y_min == pytest.approx(-1.8585268) and data.y_max == pytest.approx(2.1287067)
    assert not np.isnan(task._table).any()  # all 4^10 sequences measured
    assert data.y.max() <= 0.0054  # the bottom half of all 8.3M rows (their median is about 0.00533)
    assert np.isfinite(task.oracle(data.x)).all()


def test_random_designs_reference_reproduces_the_uniform_baseline(tfbind8):
    """128 uniform sequences scored by the exact oracle: the bar the issue measured (0.939 / 0.439)."""
    from lightning_matchopt.search.references import random_designs_reference
    from lightning_matchopt.tasks import Shekel

    reference = random_designs_reference(tfbind8, 128)
    assert reference["draws"] == 2000
    assert reference["score_100th"] == pytest.approx(0.939, abs=0.005)
    assert reference["score_100th_std"] == pytest.approx(0.037, abs=0.005)
    assert reference["score_50th"] == pytest.approx(0.439, abs=0.005)
    designs = tfbind8.random_designs(100_000, np.random.default_rng(1))
    assert designs.shape == (100_000, 8) and np.bincount(designs.ravel(), minlength=4).min() > 190_000  # uniform
    assert random_designs_reference(Shekel(), 128) is None  # no reference draws set
