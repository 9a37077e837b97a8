"""Superconductor, Hopper, Ant and D'Kitty: the real Superconductor files, and small files in Design-Bench's layout.

../shared holds the real Superconductor shards (tested when present) but no Hopper, Ant or D'Kitty
files, so the other tests write their own shards (``<folder>/<prefix>-{x,y}-<i>.npy``, float32,
y of shape (N, 1)) and run the real loaders and oracles on them.
"""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from lightning_matchopt.errors import DataError, OracleError
from lightning_matchopt.tasks import make_task


def write_shards(root: Path, folder: str, prefix: str, x: np.ndarray, y: np.ndarray, shard: int) -> None:
    directory = root / folder
    directory.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, len(x), shard)):
        np.save(directory / f"{prefix}-x-{i}.npy", x[start : start + shard].astype(np.float32))
        np.save(directory / f"{prefix}-y-{i}.npy", y[start : start + shard].astype(np.float32).reshape(-1, 1))


def superconductor_files(root: Path, n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.dirichlet(np.ones(86) * 0.3, size=n).astype(np.float32) * 10  # element amounts
    y = 20 * x[:, 0] + 10 * x[:, 1] * x[:, 2] + rng.normal(0, 0.5, n)
    y = (y - y.min()) / (y.max() - y.min()) * (185.0 - 0.00021) + 0.00021  # Design-Bench's range
    write_shards(root, "superconductor", "superconductor", x, y, shard=500)  # 3 shards, the last short
    return x, y.astype(np.float32)


def test_superconductor_loader_keeps_design_bench_band_and_range(tmp_path):
    x, y = superconductor_files(tmp_path)
    task = make_task("Superconductor-RandomForest-v0", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the published range matches: no warning
        data = task.data
    keep = y <= np.percentile(y, 80)
    np.testing.assert_array_equal(data.x, x[keep])  # file order, bottom 80%
    np.testing.assert_allclose(data.y, y[keep])
    assert (data.y_min, data.y_max) == (float(y.min()), float(y.max()))
    assert task.input_dim == 86 and not task.is_discrete


@pytest.mark.slow
def test_superconductor_real_files(data_root, tmp_path, monkeypatch):
    """Design-Bench's Superconductor-RandomForest-v0: 17,014 offline rows of 21,263, D(best) 0.400."""
    if not (data_root / "superconductor").is_dir():
        pytest.skip("Superconductor shards not present")
    monkeypatch.setenv("MATCHOPT_CACHE_DIR", str(tmp_path))  # a fresh forest, never written beside ../shared
    task = make_task("superconductor", str(data_root))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the published range 0.00021..185: these are the original rows
        data = task.data
    assert data.x.shape == (17014, 86) and data.x.dtype == np.float32 and task.input_dim == 86
    assert (data.y_min, data.y_max) == (pytest.approx(0.00021), pytest.approx(185.0))
    assert float(task.normalize_score(data.y.max())) == pytest.approx(0.400, abs=5e-4)
    assert data.y.max() <= 74.0  # the 80th percentile of all rows
    predictions = task.oracle(data.x)
    from scipy import stats

    assert task.forest.rank_correlation > 0.9  # held-out Spearman of the re-fitted forest
    assert stats.spearmanr(predictions, data.y).statistic > 0.85  # 0.876 measured (docs/oracles.md)
    assert not list((data_root / "superconductor").glob("matchopt-forest-*"))


def test_a_copy_with_another_score_range_is_called_out(tmp_path):
    rng = np.random.default_rng(0)
    write_shards(tmp_path, "ant_morphology", "ant_morphology", rng.normal(size=(50, 60)), rng.normal(size=50), 50)
    task = make_task("ant", str(tmp_path))
    with pytest.warns(UserWarning, match="not the original files"):
        task.data  # noqa: B018
    assert len(task.data.y) == int((task.data.y <= np.percentile(task.full_data()[1], 40)).sum())


@pytest.mark.parametrize(
    ("name", "folder", "dim"),
    [("superconductor", "superconductor", 86), ("hopper", "hopper_controller", 5126), ("dkitty", "dkitty_morphology", 56)],
)
def test_missing_and_malformed_files_get_one_clear_line(tmp_path, name, folder, dim):
    with pytest.raises(DataError, match=f"no .*-x-\\*.npy files .*Put Design-Bench's '{folder}/' folder"):
        make_task(name, str(tmp_path)).data  # noqa: B018
    write_shards(tmp_path, folder, folder, np.zeros((4, dim + 1)), np.arange(4.0), 4)
    with pytest.raises(DataError, match=f"must hold \\(N, {dim}\\) designs"):
        make_task(name, str(tmp_path)).data  # noqa: B018


@pytest.mark.slow  # fits the oracle's random forest
def test_superconductor_forest_is_fitted_once_cached_and_checked(tmp_path, monkeypatch):
    from lightning_matchopt.tasks.oracles import forest as forest_module

    monkeypatch.setenv("MATCHOPT_CACHE_DIR", str(tmp_path / "cache"))
    x, y = superconductor_files(tmp_path / "data")
    task = make_task("superconductor", str(tmp_path / "data"))
    scores = task.oracle(x[:300])
    from scipy.stats import spearmanr

    assert spearmanr(scores, y[:300]).statistic > 0.8  # the forest learned the scores' order
    assert 0.7 < task.forest.rank_correlation <= 1  # held-out half of the 2,000-row sample
    cached = sorted((tmp_path / "cache").glob("matchopt-forest-*.pkl"))
    assert len(cached) == 1 and cached[0].with_name(cached[0].name + ".sha256").is_file()

    def no_refit(*args, **kwargs):
        raise AssertionError("the cached forest should have been used")

    monkeypatch.setattr(forest_module, "fit_forest", no_refit)
    again = make_task("superconductor", str(tmp_path / "data"))
    np.testing.assert_array_equal(again.oracle(x[:300]), scores)  # same forest, read from the cache

    cached[0].write_bytes(cached[0].read_bytes()[:-10])  # truncated: fails its checksum
    monkeypatch.undo()
    monkeypatch.setenv("MATCHOPT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="fails its checksum"):
        rebuilt = make_task("superconductor", str(tmp_path / "data")).oracle(x[:300])
    np.testing.assert_array_equal(rebuilt, scores)  # seeded: the refit is the same forest


@pytest.mark.slow  # fits the oracle's random forest
@pytest.mark.parametrize("data_mode", [0o755, 0o555], ids=["writable", "without-write-bits"])
def test_the_forest_is_never_written_into_the_data_root(tmp_path, monkeypatch, data_mode):
    x, _ = superconductor_files(tmp_path / "data")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*"))
    folder = tmp_path / "data" / "superconductor"
    folder.chmod(data_mode)
    try:
        monkeypatch.setenv("MATCHOPT_CACHE_DIR", str(tmp_path / "cache"))
        make_task("superconductor", str(tmp_path / "data")).oracle(x[:5])
    finally:
        folder.chmod(0o755)
    assert list((tmp_path / "cache").glob("matchopt-forest-*.pkl"))
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*")) == before


@pytest.mark.slow  # fits the oracle's random forest
def test_an_unwritable_cache_is_one_warning_and_the_oracle_still_scores(tmp_path, monkeypatch):
    x, _ = superconductor_files(tmp_path / "data")
    (tmp_path / "cache").write_text("a file, not a folder")
    monkeypatch.setenv("MATCHOPT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="could not cache the fitted forest .* set MATCHOPT_CACHE_DIR"):
        scores = make_task("superconductor", str(tmp_path / "data")).oracle(x[:5])
    assert np.isfinite(scores).all()


def test_hopper_design_is_read_in_design_bench_order():
    from lightning_matchopt.tasks.oracles.hopper import LAYER_SHAPES, N_PARAMS, policy_layers

    assert N_PARAMS == 5126
    design = np.arange(N_PARAMS, dtype=np.float64)
    w0, b0, w1, b1, w2, b2 = policy_layers(design)
    assert w0.shape == (11, 64) and w0[0, 1] == 1 and w0[1, 0] == 64  # C order
    assert b0[0] == 704 and w1[0, 0] == 768 and b1[0] == 4864 and w2[0, 0] == 4928 and b2[0] == 5120
    assert [a.shape for a in (w0, b0, w1, b1, w2, b2)] == list(LAYER_SHAPES[:-1])  # log-std dropped


@pytest.mark.slow
def test_hopper_oracle_runs_real_episodes_in_parallel_and_reproducibly(tmp_path):
    pytest.importorskip("mujoco")
    pytest.importorskip("gymnasium")
    from lightning_matchopt.tasks.oracles.hopper import N_PARAMS, episode_return, evaluate_policies

    rng = np.random.default_rng(0)
    designs = rng.normal(0, 0.2, (4, N_PARAMS))
    serial = evaluate_policies(designs, workers=1, progress=False)
    parallel = evaluate_policies(designs, workers=2, progress=False)
    np.testing.assert_array_equal(serial, parallel)  # worker processes change nothing
    assert np.isfinite(serial).all() and (serial > 0).all()  # +1 per healthy step
    assert len(set(serial.tolist())) == 4  # different policies, different returns
    # Standing still with zero torque: healthy until it falls, about 1 per step of 0.008 s.
    assert 1 < episode_return(np.zeros(N_PARAMS)) < 1000
    write_shards(tmp_path, "hopper_controller", "hopper_controller", designs, np.array([87.93491, 1361.6106, 300.0, 500.0]), 4)
    task = make_task("HopperController-Exact-v0", str(tmp_path), workers=1)
    assert task.has_oracle and len(task.data.y) == 4  # all rows are offline (max_percentile 100)
    np.testing.assert_array_equal(task.oracle(designs[:2]), serial[:2])


def random_ant_policy(path: Path, hidden: int = 32, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    obs, act = 17 + 18 + 14 * 6 + 60, 12
    sizes = [(hidden, obs), (hidden, hidden), (2 * act, hidden)]
    state = {}
    for i, (out, inp) in zip((0, 2, 4), sizes, strict=True):
        state[f"base_network.network.{i}.weight"] = rng.normal(0, 1 / np.sqrt(inp), (out, inp)).astype(np.float32)
        state[f"base_network.network.{i}.bias"] = np.zeros(out, np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(state))


@pytest.mark.slow
def test_ant_morphology_is_built_from_the_design():
    mujoco = pytest.importorskip("mujoco")
    from lightning_matchopt.tasks.oracles.morphology import DEFAULT_DESIGN, ant_xml

    model = mujoco.MjModel.from_xml_string(ant_xml(DEFAULT_DESIGN))
    assert (model.nq, model.nv, model.nu, model.nbody) == (19, 18, 12, 14)
    design = DEFAULT_DESIGN.copy()
    design[15 + 12] = 0.35  # leg 1's hip segment
    design[15 + 7] = 40.0  # leg 1's hip half-range, degrees
    design[0] = 5.0  # leg 0's x: clipped to 0.1
    model = mujoco.MjModel.from_xml_string(ant_xml(design))
    np.testing.assert_allclose(model.body("thigh_1_body").pos, [0.35, 0.35, 0])
    np.testing.assert_allclose(model.jnt_range[model.joint("hip_1_joint").id], np.radians([-40, 40]))
    np.testing.assert_allclose(model.body("leg_0_body").pos, [0.1, 0, 0])


@pytest.mark.slow
def test_ant_oracle_rolls_out_the_policy_and_says_when_it_is_missing(tmp_path):
    pytest.importorskip("mujoco")
    from lightning_matchopt.tasks.oracles.morphology import DEFAULT_DESIGN

    rng = np.random.default_rng(0)
    x = DEFAULT_DESIGN + rng.normal(0, 0.01, (30, 60))
    write_shards(tmp_path, "ant_morphology", "ant_morphology", x, rng.normal(size=30), 30)
    task = make_task("AntMorphology-Exact-v0", str(tmp_path))
    reason = task.oracle_unavailable()
    assert "ant_morphology/ant_oracle.pkl" in reason and "--data.task_options.policy_path" in reason
    assert not task.has_oracle and np.isnan(task.oracle(x[:2])).all()  # unscored, not a crash

    random_ant_policy(tmp_path / "ant_morphology" / "ant_oracle.pkl")
    task = make_task("ant", str(tmp_path))
    assert task.has_oracle
    first, again = task.oracle(x[:3]), task.oracle(x[:3])
    np.testing.assert_array_equal(first, again)  # no reset noise: deterministic
    assert np.isfinite(first).all() and len(set(first.tolist())) == 3


def test_policy_files_cannot_run_code(tmp_path):
    from lightning_matchopt.tasks.oracles.morphology import load_policy

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "ant_oracle.pkl"
    path.write_bytes(pickle.dumps({"base_network.network.0.weight": Evil()}))
    with pytest.raises(OracleError, match="builtins.print is not allowed"):
        load_policy(path)
    path.write_bytes(pickle.dumps({"weights": np.zeros(3)}))
    with pytest.raises(OracleError, match="must be a dict with keys"):
        load_policy(path)


def test_dkitty_reads_its_data_and_says_why_it_cannot_score(tmp_path):
    rng = np.random.default_rng(0)
    write_shards(tmp_path, "dkitty_morphology", "dkitty_morphology", rng.normal(size=(40, 56)), rng.normal(size=40), 40)
    task = make_task("DKittyMorphology-Exact-v0", str(tmp_path))
    with pytest.warns(UserWarning, match="not the original files"):
        assert task.data.x.shape == (16, 56)  # bottom 40% of 40 rows
    reason = task.oracle_unavailable()
    assert reason.startswith("dkitty:") and "dkitty_morphology/dkitty_oracle.pkl" in reason and "\n" not in reason
    with pytest.raises(OracleError, match="ROBEL"):
        task._score(task.data.x[:1])


@pytest.mark.slow  # a fit scored by a fitted forest
def test_cli_run_on_superconductor_files_scores_with_the_forest(tmp_path, capsys):
    from lightning_matchopt.cli import main

    superconductor_files(tmp_path / "data")
    main([
        "fit", "--config", str(Path(__file__).parent / "configs" / "tiny.yaml"),
        "--data.task", "superconductor", "--data.data_root", str(tmp_path / "data"), "--data.task_options", "{}",
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--search.every_n_epochs", "0",
    ])  # fmt: skip
    import json

    results = json.loads(next((tmp_path / "runs").rglob("results.json")).read_text())
    assert results["task"] == "superconductor" and results["n_failed"] == 0
    assert 0 <= results["score_50th"] <= results["score_100th"] <= 1.2


@pytest.mark.slow
def test_cli_run_without_the_ant_policy_says_so_first_and_saves_designs(tmp_path, capsys):
    from lightning_matchopt.cli import main

    rng = np.random.default_rng(0)
    write_shards(tmp_path / "data", "ant_morphology", "ant_morphology", rng.normal(size=(300, 60)), rng.normal(size=300), 300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # not the original score range
        main([
            "fit", "--config", str(Path(__file__).parent / "configs" / "tiny.yaml"),
            "--data.task", "ant", "--data.data_root", str(tmp_path / "data"), "--data.task_options", "{}",
            "--trainer.default_root_dir", str(tmp_path / "runs"), "--search.every_n_epochs", "0",
        ])  # fmt: skip
    out = capsys.readouterr().out
    assert "search: designs will not be scored: ant: the oracle needs Design-Bench's pre-trained policy" in out
    designs = np.load(next((tmp_path / "runs").rglob("designs.npz")))
    assert designs["designs"].shape == (16, 60) and np.isnan(designs["scores"]).all()
    assert np.isfinite(designs["predictions"]).all()
