"""A user's own data through the same CLI: NPZ and CSV, vectors and tokens, with or without an oracle."""

import json

import numpy as np
import pytest
import torch

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


@pytest.mark.slow
def test_npz_with_oracle_through_the_cli(npz_file, tmp_path):
    options = f"{{path: {npz_file}, oracle: 'test_files_task:quadratic_oracle'}}"
    main(["fit", "--config", "configs/files.yaml", f"--data.task_options={options}",
          f"--trainer.default_root_dir={tmp_path / 'run'}", *FAST])
    results = results_of(tmp_path / "run")
    assert results["task"] == "files" and np.isfinite(results["score_100th"]) and results["n_failed"] == 0
    assert results["d_best"] == 1.0  # default normalizers: the data's own min and max


@pytest.mark.slow
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


def infeasible_oracle(x):
    """LaMBO's convention: every third design cannot exist (-inf); the second one the oracle fails on (NaN)."""
    scores = quadratic_oracle(x)
    scores[::3], scores[1] = -np.inf, np.nan
    return scores


def test_infeasible_designs_are_counted_as_the_worst_and_reported_apart(npz_file, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lightning_matchopt.metrics import percentile_scores

    options = f"{{path: {npz_file}, oracle: 'test_files_task:infeasible_oracle'}}"
    main(["fit", "--config", "configs/files.yaml", f"--data.task_options={options}",
          f"--trainer.default_root_dir={tmp_path / 'run'}", *FAST])
    log_dir = next((tmp_path / "run").glob("lightning_logs/version_*"))
    results = results_of(tmp_path / "run")
    assert results["n_infeasible"] == 3 and results["n_failed"] == 1  # designs 0, 3, 6; design 1
    assert "min(0, the worst feasible" in results["notes"]
    normalized = np.load(log_dir / "designs.npz")["normalized_scores"]
    assert np.isneginf(normalized[[0, 3, 6]]).all() and np.isnan(normalized[1])
    counted = normalized[~np.isnan(normalized)]  # independently: infeasible at min(0, worst feasible)
    counted[np.isneginf(counted)] = min(0.0, counted[np.isfinite(counted)].min())
    assert abs(results["score_mean"] - counted.mean()) < 1e-12
    assert abs(results["score_50th"] - np.percentile(counted, 50)) < 1e-12
    assert results["score_mean"] == percentile_scores(torch.as_tensor(normalized))["score_mean"]
    lines = (log_dir / "candidates.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    flags = [int(r[header.index("infeasible")]) for r in rows]
    assert flags == [1, 0, 0, 1, 0, 0, 1, 0] and rows[0][header.index("score")] == "-inf"
    assert rows[1][header.index("score")] == ""  # failed: an empty cell, not infeasible
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    assert accumulator.Scalars("search/n_infeasible")[-1].value == 3
    assert accumulator.Scalars("search/n_failed")[-1].value == 1
    out = capsys.readouterr().out
    assert "3 infeasible (counted as the worst), 1 unscored (left out)" in out, out[-2000:]


def test_the_scores_stand_beside_their_references(tmp_path, monkeypatch, capsys):
    # A token task with a cheap oracle: random designs, as many as the search's, stand beside the scores.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    from lightning_matchopt.search.references import random_draws
    from lightning_matchopt.tasks.files import FilesTask

    monkeypatch.setattr(FilesTask, "random_reference_draws", 50)
    tokens = np.random.default_rng(1).integers(0, 3, size=(120, 5))
    path = tmp_path / "seqs.npz"
    np.savez(path, x=tokens, y=count_ones_oracle(tokens))
    options = f"{{path: {path}, num_classes: 3, oracle: 'test_files_task:count_ones_oracle'}}"
    main(["fit", "--config", "configs/files.yaml", f"--data.task_options={options}",
          f"--trainer.default_root_dir={tmp_path / 'run'}", *FAST, "--search.n_designs=6"])
    log_dir = next((tmp_path / "run").glob("lightning_logs/version_*"))
    results = results_of(tmp_path / "run")
    random = results["random_designs"]
    draws = random_draws(make_task("files", path=path, num_classes=3, oracle="test_files_task:count_ones_oracle"), 6)
    assert random["n_designs"] == 6 and random["draws"] == 50  # as many random designs as the search's
    assert random["score_100th"] == float(draws["score_100th"].mean())
    assert random["beats_100th"] == float((results["score_100th"] > draws["score_100th"]).mean())
    assert random["beats_50th"] == float((results["score_50th"] > draws["score_50th"]).mean())
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    scalar = lambda tag: accumulator.Scalars(tag)[-1].value  # noqa: E731
    assert abs(scalar("search/reference_random_100th") - random["score_100th"]) < 1e-6
    assert abs(scalar("search/reference_random_50th") - random["score_50th"]) < 1e-6
    assert abs(scalar("search/beats_random_100th") - random["beats_100th"]) < 1e-6
    assert abs(scalar("search/reference_dbest") - results["d_best"]) < 1e-6
    layout = layout_pb2.Layout.FromString(accumulator.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    assert charts["score_100th"] == ["search/score_100th", "search/reference_dbest", "search/reference_random_100th"]
    assert "search/reference_random_50th" in charts["score_50th"]
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("search (files, epoch 2)"))
    assert f"6 random designs: score_100th={random['score_100th']:.4f}" in line, line  # uniform: no law named
    assert random["law"] == "uniform over the design space"
    assert f"this run beats {random['beats_100th']:.0%} / {random['beats_50th']:.0%} of 50 such draws" in line, line
    print(line)
