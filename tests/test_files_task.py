"""A user's own data through the same CLI: NPZ and CSV, vectors and tokens, with or without an oracle."""

import json

import numpy as np
import pytest

from lightning_matchopt.cli import main
from lightning_matchopt.errors import ConfigError, DataError
from lightning_matchopt.tasks import make_task

FAST = ["--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", "--data.n_bins=8",
        "--model.surrogate.hidden_dims=[32]", "--search.n_designs=8", "--search.steps=10"]


def quadratic_oracle(x):
    return -((np.asarray(x) - 0.7) ** 2).sum(1)


def count_ones_oracle(tokens):
    return (np.asarray(tokens) == 1).sum(1).astype(float)


@pytest.fixture
def npz_file(tmp_path):
    x = np.random.default_rng(0).uniform(size=(200, 3))
    path = tmp_path / "designs.npz"
    np.savez(path, x=x, y=quadratic_oracle(x))
    return path


def results_of(root):
    return json.loads(next(root.glob("lightning_logs/version_*/results.json")).read_text())


def test_npz_with_oracle_through_the_cli(npz_file, tmp_path):
    options = f"{{path: {npz_file}, oracle: 'test_files_task:quadratic_oracle'}}"
    main(["fit", "--config", "configs/files.yaml", f"--data.task_options={options}",
          f"--trainer.default_root_dir={tmp_path / 'run'}", *FAST])
    results = results_of(tmp_path / "run")
    assert results["task"] == "files" and np.isfinite(results["score_100th"]) and results["n_failed"] == 0
    assert results["d_best"] == 1.0  # default normalizers: the data's own min and max


def test_csv_tokens_without_oracle_writes_predicted_designs(tmp_path):
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 3, size=(120, 5))
    path = tmp_path / "seqs.csv"
    rows = [",".join(["a", "b", "y", "c", "d", "e"])]
    rows += [",".join(map(str, [*t[:2], count_ones_oracle(t[None])[0], *t[2:]])) for t in tokens]
    path.write_text("\n".join(rows) + "\n")
    task = make_task("files", path=path, num_classes=3)
    assert task.design_shape == (5,) and task.input_dim == 10 and np.array_equal(task.data.x, tokens)
    main(["fit", "--config", "configs/files.yaml", f"--data.task_options={{path: {path}, num_classes: 3}}",
          f"--trainer.default_root_dir={tmp_path / 'run'}", *FAST])
    designs = np.load(next((tmp_path / "run").glob("lightning_logs/version_*/designs.npz")))
    assert designs["designs"].shape == (8, 5) and designs["designs"].max() < 3
    assert np.isnan(designs["scores"]).all() and np.isfinite(designs["predictions"]).all()


def test_bad_user_files_are_named(tmp_path, npz_file):
    with pytest.raises(DataError, match="does not exist"):
        make_task("files", path=tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match="must be .npz"):
        make_task("files", path=tmp_path / "data.txt")
    np.savez(tmp_path / "no_y.npz", x=np.zeros((5, 2)))
    with pytest.raises(DataError, match="has no array 'y'"):
        make_task("files", path=tmp_path / "no_y.npz").data  # noqa: B018
    with pytest.raises(DataError, match=r"token designs must be integers in \[0, 1\]"):
        make_task("files", path=npz_file, num_classes=2).data  # noqa: B018
    with pytest.raises(ConfigError, match="must look like 'package.module:function'"):
        make_task("files", path=npz_file, oracle="no_colon")
    with pytest.raises(ConfigError, match="has no callable 'nope'"):
        make_task("files", path=npz_file, oracle="test_files_task:nope")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"has no 'y' column .*task_options: \{y_column: NAME\}"):
        make_task("files", path=tmp_path / "bad.csv")
    np.savez(tmp_path / "rows.npz", x=np.zeros((5, 2)), y=np.arange(4.0))
    with pytest.raises(DataError, match="x has 5 rows but y has 4"):
        make_task("files", path=tmp_path / "rows.npz").data  # noqa: B018
