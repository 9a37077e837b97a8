import numpy as np
import pytest
import torch

from lightning_matchopt.errors import ConfigError, DataError, OracleError
from lightning_matchopt.tasks import Shekel, TFBind8, make_task, to_logits, to_tokens
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
    with pytest.raises(DataError, match="x has 10 rows but y has 9"):
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
    with pytest.raises(ConfigError, match="unknown task 'tfbind9'; known tasks: ackley, rosenbrock, shekel, tfbind8"):
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
    assert task.normalize_score(task.oracle(np.full((1, 4), 4.0)))[0] == pytest.approx(1.0)
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
