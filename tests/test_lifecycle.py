"""The life of a surrogate after fit: validate it, score designs with it, search with it again."""

import json

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import REPO, TINY_CONFIG
from lightning_matchopt.cli import main
from lightning_matchopt.data.trajectories import held_out_trajectories, split_generator
from lightning_matchopt.search.candidates import count_unique_and_novel, describe_candidates
from test_cli import run_cli

BEST = REPO / "configs" / "checkpoint" / "best_val_spearman.yaml"


def matchopt(root, *args):
    main([*args[:1], "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}", *args[1:]])
    return max(root.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny fit that also keeps the best checkpoint by val/spearman."""
    root = tmp_path_factory.mktemp("fit")
    return root, matchopt(root, "fit", "--config", str(BEST), "--trainer.max_epochs=3")


def events(log_dir):
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_held_out_rows_are_stratified_monotone_seeded_and_disjoint():
    y = torch.randn(1000, dtype=torch.float64)
    held = held_out_trajectories(y, 0.1, 64, split_generator(0))
    assert held.shape == (2, 50)  # 10% of 1000 = 100 rows = 2 trajectories of 50 (fewer rows than bins)
    assert held.unique().numel() == held.numel()
    assert (y[held].diff(dim=1) >= 0).all()  # every trajectory climbs
    ranks = y.argsort().argsort()[held.flatten()]  # one row from every 2% of the ranks
    assert sorted((ranks // 20).tolist()) == [b for b in range(50) for _ in range(2)]
    assert torch.equal(held, held_out_trajectories(y, 0.1, 64, split_generator(0)))
    assert not torch.equal(held, held_out_trajectories(y, 0.1, 64, split_generator(1)))
    assert held_out_trajectories(y, 0.0, 64, split_generator(0)).numel() == 0


def test_candidates_know_duplicates_the_data_and_distances():
    offline = np.array([[0, 1, 2], [3, 3, 3]])
    designs = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 3], [2, 2, 2]])
    table = describe_candidates(designs, offline, None, None, discrete=True)
    assert table["duplicate"].tolist() == [False, False, True, False]
    assert table["in_offline"].tolist() == [True, False, False, False]
    assert table["nearest_offline_distance"].tolist() == [0, 1, 1, 2]  # positions that differ
    assert count_unique_and_novel(table) == {"n_unique": 3, "n_novel": 2}
    vectors = describe_candidates(np.eye(2), None, torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2), discrete=False)
    assert vectors["nearest_offline_distance"].tolist() == [5.0]


def test_fit_validates_on_held_out_rows_and_writes_pictures_and_hparams(trained):
    _, log_dir = trained
    acc = events(log_dir)
    tags = acc.Tags()
    assert {"val/loss_gm", "val/loss_reg", "val/spearman", "val/pearson"} <= set(tags["scalars"])
    assert len(acc.Scalars("val/spearman")) == 3  # once per epoch
    assert set(tags["histograms"]) == {"search/normalized_scores", "search/normalized_predictions"}
    assert set(tags["images"]) == {"search/predicted_vs_oracle", "val/predicted_vs_true"}
    assert len(acc.Images("val/predicted_vs_true")) == 1  # the last epoch's, not one per epoch
    assert [e.step for e in acc.Images("search/predicted_vs_oracle")] == [1, 2, 3]  # one per search
    content = acc.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {"search/score_100th", "val/spearman"}
    assert {"model/lr", "data/val_fraction", "search/n_designs"} <= {h.name for h in experiment.hparam_infos}
    # TensorBoard sorts the settings by name: the method and the final scores come first.
    names = sorted(h.name for h in experiment.hparam_infos)
    assert names[:4] == ["Method", "Score/100th", "Score/50th", "Score/mean"], names[:6]
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    results = json.loads((log_dir / "results.json").read_text())
    assert start.hparams["Method"].string_value == "gm + reg, adam"  # MATCH-OPT's defaults
    assert start.hparams["Score/100th"].number_value == pytest.approx(results["score_100th"])
    assert "hp_metric" not in tags["scalars"]  # Lightning's placeholder session is not written
    # The method's own held-out loss (MATCH-OPT's defaults: 1 x gradient matching + 1 x regression), every epoch.
    objective, gm, reg = ([e.value for e in acc.Scalars(f"val/{t}")] for t in ("objective", "loss_gm", "loss_reg"))
    assert len(objective) == 3 and objective == pytest.approx([a + b for a, b in zip(gm, reg, strict=True)], rel=1e-6)


def test_the_held_out_objective_weighs_the_held_out_losses_as_the_method_weighs_its_terms():
    from lightning_matchopt.models import GradientMatching, ListNet, Regression
    from lightning_matchopt.models.module import held_out_objective

    assert held_out_objective([GradientMatching(weight=2.0), Regression(weight=0.5)]) == {"gm": 2.0, "reg": 0.5}
    assert held_out_objective([GradientMatching(weight=0.0), Regression()]) == {"reg": 1.0}  # a zero weight adds nothing
    assert held_out_objective([Regression(), ListNet()]) == {}  # ListNet has no held-out counterpart: no val/objective


def test_candidates_table_beside_the_designs(trained):
    _, log_dir = trained
    designs = np.load(log_dir / "designs.npz")
    results = json.loads((log_dir / "results.json").read_text())
    assert {"duplicate", "in_offline", "nearest_offline_distance", "normalized_predictions"} <= set(designs)
    assert results["n_unique"] == int((~designs["duplicate"]).sum()) and results["n_novel"] <= results["n_unique"]
    header = (log_dir / "candidates.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["x0", "x1", "x2", "x3"] and {"prediction", "score", "in_offline"} <= set(header)
    table = np.genfromtxt(log_dir / "candidates.csv", delimiter=",", names=True)
    assert np.allclose(table["score"], designs["scores"]) and len(table) == 16


@pytest.mark.slow  # two validate runs
def test_validate_gives_the_last_epochs_metrics_with_and_without_inference_mode(trained, capsys):
    root, log_dir = trained
    logged = events(log_dir).Scalars("val/spearman")[-1].value
    for mode in ("true", "false"):  # validation needs no autograd: both paths work
        out = matchopt(root, "validate", f"--ckpt_path={log_dir}/checkpoints/last.ckpt",
                       f"--trainer.inference_mode={mode}")
        assert events(out).Scalars("val/spearman")[0].value == pytest.approx(logged, abs=1e-6)
        printed = capsys.readouterr().out  # the metrics, and where they were logged
        assert "val/spearman" in printed
        assert f"validate: val/* metrics and the predicted-vs-true plot logged to {out} (TensorBoard)" in printed


@pytest.mark.slow
def test_predict_scores_offline_rows_and_a_file_in_score_units(trained, tmp_path):
    root, log_dir = trained
    out = matchopt(root, "predict", "--ckpt_path=last")
    offline = np.load(out / "predictions.npz")
    assert offline["designs"].shape == (200, 4) and offline["held_out"].sum() == 16
    # Held-out rows, predicted with the checkpoint's split: their rank correlation is val/spearman's.
    from scipy.stats import spearmanr

    rho = spearmanr(offline["predictions"][offline["held_out"]], offline["y"][offline["held_out"]])[0]
    assert rho == pytest.approx(events(log_dir).Scalars("val/spearman")[-1].value, abs=1e-5)

    np.savetxt(tmp_path / "mine.csv", offline["designs"][:5], delimiter=",", header="a,b,c,d", comments="")
    out = matchopt(root, "predict", "--ckpt_path=last", f"--data.predict_path={tmp_path / 'mine.csv'}")
    mine = (out / "predictions.csv").read_text().splitlines()
    assert mine[0] == "a,b,c,d,prediction,normalized_prediction" and len(mine) == 6
    assert np.allclose(np.load(out / "predictions.npz")["predictions"], offline["predictions"][:5], atol=1e-5)


def test_search_from_checkpoint_reproduces_the_final_search(trained):
    root, log_dir = trained
    out = matchopt(root, "search", f"--ckpt_path={log_dir}/checkpoints/last.ckpt")
    fit, again = (json.loads((d / "results.json").read_text()) for d in (log_dir, out))
    for key in ("score_100th", "score_50th", "score_mean", "predicted_mean", "n_unique", "epoch", "search"):
        assert again[key] == fit[key], key
    assert [h["epoch"] for h in again["history"]] == [3]  # the training run's searches stay in its own log dir
    first, second = np.load(log_dir / "designs.npz"), np.load(out / "designs.npz")
    for key in ("designs", "scores", "predictions", "nearest_offline_distance"):
        assert np.array_equal(first[key], second[key]), key


def test_the_fits_own_config_yaml_is_a_config_for_search(trained):
    """The saved config.yaml carries fit's arguments (ckpt_path, weights_only); search takes it as it is."""
    root, log_dir = trained
    main(["search", "--config", str(log_dir / "config.yaml"), f"--trainer.default_root_dir={root / 'again'}",
          f"--ckpt_path={log_dir}/checkpoints/last.ckpt"])
    again = next((root / "again").glob("lightning_logs/version_*/results.json"))
    assert json.loads(again.read_text())["score_100th"] == json.loads((log_dir / "results.json").read_text())["score_100th"]


@pytest.mark.slow
def test_a_config_whose_logger_points_into_the_fits_log_dir_cannot_overwrite_it(trained, tmp_path, capsys):
    """Earlier resumed fits saved a config.yaml with the logger pinned to their own version dir."""
    root, log_dir = trained
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text((log_dir / "config.yaml").read_text().replace(
        "  logger: null",
        f"  logger:\n    class_path: lightning.pytorch.loggers.TensorBoardLogger\n    init_args:\n"
        f"      save_dir: {log_dir.parent.parent}\n      name: lightning_logs\n      version: {log_dir.name}",
    ))
    assert "TensorBoardLogger" in pinned.read_text()
    results = (log_dir / "results.json").read_text()
    main(["search", "--config", str(pinned), f"--trainer.default_root_dir={tmp_path / 'out'}",
          f"--ckpt_path={log_dir}/checkpoints/last.ckpt", "--search.objective=lcb"])
    assert "a training run's log dir; writing to a new log dir" in capsys.readouterr().err
    assert (log_dir / "results.json").read_text() == results
    assert next((tmp_path / "out").glob("lightning_logs/version_*/results.json")).is_file()


@pytest.mark.slow
def test_search_from_the_best_checkpoint_with_many_random_starts(trained):
    root, log_dir = trained
    (best,) = (log_dir / "checkpoints").glob("best-epoch=*.ckpt")
    out = matchopt(root, "search", f"--ckpt_path={best}", "--search.n_designs=1000", "--search.start=random",
                   "--search.steps=5", "--search.drop_duplicates=true")
    results = json.loads((out / "results.json").read_text())
    assert results["n_designs"] == 1000 and results["search"]["start"] == "random"  # 5x the 200 offline rows
    assert np.load(out / "designs.npz")["designs"].shape == (results["n_unique"], 4)
    assert results["epoch"] == int(best.stem.split("=")[1]) + 1  # epochs trained; the file name counts from 0


@pytest.mark.slow  # a dozen CLI runs
def test_bad_checkpoints_and_files_fail_in_one_line(trained, tmp_path, capsys):
    root, log_dir = trained
    last = log_dir / "checkpoints" / "last.ckpt"
    np.savetxt(tmp_path / "wide.csv", np.ones((3, 5)), delimiter=",", header="a,b,c,d,e", comments="")
    cases = [
        (["search", f"--ckpt_path={tmp_path / 'nope.ckpt'}"], f"checkpoint {tmp_path / 'nope.ckpt'} does not exist"),
        (["validate"], "matchopt validate needs --ckpt_path"),
        (["predict", f"--ckpt_path={last}", f"--data.predict_path={tmp_path / 'wide.csv'}"],
         "holds designs of shape (5,), but task 'shekel' has designs of shape (4,)"),
        (["predict", f"--ckpt_path={last}", f"--data.predict_path={tmp_path / 'missing.csv'}"], "missing.csv"),
        (["validate", f"--ckpt_path={last}", "--data.task=ackley", "--data.task_options={dim: 4}"],
         f"checkpoint {last} was trained on task 'shekel', not 'ackley': pass the config it was trained with"),
        (["validate", f"--ckpt_path={last}", "--data.val_fraction=0"], None),  # the checkpoint's split wins
    ]
    for args, message in cases:
        if message is None:
            matchopt(root, *args)
            continue
        runs = sorted(root.glob("lightning_logs/version_*"))
        with pytest.raises(SystemExit) as exit_info:
            matchopt(root, *args)
        assert exit_info.value.code == 2
        last_line = capsys.readouterr().err.strip().splitlines()[-1]
        assert last_line.startswith("matchopt: error: ") and message in last_line, last_line
        assert sorted(root.glob("lightning_logs/version_*")) == runs, "a failed command left a run folder"


@pytest.mark.slow
def test_checkpoint_of_another_task_fails_through_the_installed_cli(trained):
    _, log_dir = trained
    result = run_cli("predict", "--config", str(TINY_CONFIG), "--data.task=ackley", "--data.task_options={dim: 6}",
                     f"--ckpt_path={log_dir / 'checkpoints' / 'last.ckpt'}", f"--trainer.default_root_dir={log_dir}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"matchopt: error: checkpoint {log_dir / 'checkpoints' / 'last.ckpt'} was trained on task 'shekel', not "
        "'ackley': pass the config it was trained with (its log dir's config.yaml)"
    )


@pytest.mark.slow  # resumes
def test_a_truncated_last_checkpoint_falls_back_to_previous_or_fails_in_one_line(trained, tmp_path, capsys):
    """The resume checks of fit (issue 12) hold in every subcommand: search, validate, predict."""
    root, log_dir = trained
    copy = tmp_path / "checkpoints"
    copy.mkdir()
    for name in ("last.ckpt", "previous.ckpt"):
        (copy / name).write_bytes((log_dir / "checkpoints" / name).read_bytes())
    (copy / "last.ckpt").write_bytes((copy / "last.ckpt").read_bytes()[:1000])  # a kill mid-write
    out = matchopt(root, "search", f"--ckpt_path={copy / 'last.ckpt'}", "--search.n_designs=4")
    err = capsys.readouterr().err
    assert f"{copy / 'last.ckpt'} cannot be read; search uses {copy / 'previous.ckpt'}, one epoch earlier" in err
    assert json.loads((out / "results.json").read_text())["epoch"] == 2  # previous.ckpt: the epoch before
    (copy / "previous.ckpt").unlink()
    for command in ("search", "validate", "predict"):
        with pytest.raises(SystemExit) as exit_info:
            matchopt(root, command, f"--ckpt_path={copy / 'last.ckpt'}")
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1, err
        assert err[0].startswith(f"matchopt: error: checkpoint {copy / 'last.ckpt'} cannot be read (")


@pytest.mark.slow
def test_without_held_out_rows_there_is_no_validation(tmp_path, capsys):
    out = matchopt(tmp_path, "fit", "--data.val_fraction=0", "--search.every_n_epochs=0")
    acc = events(out)
    assert not [t for t in acc.Tags()["scalars"] if t.startswith("val/")] and "val/predicted_vs_true" not in acc.Tags()["images"]
    with pytest.raises(SystemExit):
        matchopt(tmp_path, "validate", "--ckpt_path=last")
    assert "no held-out rows to validate on" in capsys.readouterr().err.strip().splitlines()[-1]


def test_without_matplotlib_scatter_plots_are_skipped(monkeypatch):
    import sys

    from lightning_matchopt.pictures import scatter_image

    assert scatter_image([0.0, 1.0], [1.0, 0.0], "x", "y").shape[2] == 3
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    assert scatter_image([0.0, 1.0], [1.0, 0.0], "x", "y") is None


@pytest.mark.slow  # a fit and three subcommands
def test_an_ensemble_validates_predicts_and_searches_from_its_checkpoint(tmp_path, capsys):
    """Held-out metrics of K members (their mean's correlations), then the checkpoint's K in every subcommand."""
    fit = matchopt(tmp_path, "fit", "--model.surrogate=lightning_matchopt.models.EnsembleMLP",
                   "--model.surrogate.ensemble_size=3", "--search.every_n_epochs=0")
    acc = events(fit)
    logged = {tag: acc.Scalars(tag)[-1].value for tag in ("val/spearman", "val/loss_reg", "val/loss_gm")}
    assert all(np.isfinite(v) for v in logged.values())
    # No --model.surrogate here: the checkpoint says 3 (and the data module's draws follow it).
    out = matchopt(tmp_path, "validate", "--ckpt_path=last")
    again = events(out)
    for tag, value in logged.items():
        assert again.Scalars(tag)[0].value == pytest.approx(value, abs=1e-5), tag
    out = matchopt(tmp_path, "predict", "--ckpt_path=last")
    offline = np.load(out / "predictions.npz")
    from scipy.stats import spearmanr

    rho = spearmanr(offline["predictions"][offline["held_out"]], offline["y"][offline["held_out"]])[0]
    assert rho == pytest.approx(logged["val/spearman"], abs=1e-5)  # predict writes the members' mean
    out = matchopt(tmp_path, "search", "--ckpt_path=last")
    fit_results, results = (json.loads((d / "results.json").read_text()) for d in (fit, out))
    assert results["score_100th"] == fit_results["score_100th"] and results["predicted_std"] > 0
    assert np.array_equal(np.load(fit / "designs.npz")["prediction_std"], np.load(out / "designs.npz")["prediction_std"])


@pytest.mark.slow
def test_a_checkpoint_of_a_module_built_in_python_searches_and_loads(tmp_path, capsys):
    """No pickled objects in its hyperparameters: matchopt search reads it with weights_only=True, as a CLI one."""
    from functools import partial

    import lightning as L

    from lightning_matchopt import MatchOptDataModule, MatchOptModule
    from lightning_matchopt.models import GradientMatching, MLPSurrogate, Regression

    data = MatchOptDataModule(task="shekel", task_options={"n_samples": 400, "max_percentile": 50}, n_bins=16,
                              trajectories_per_batch=2)
    data.setup("fit")
    module = MatchOptModule(data.input_dim, partial(MLPSurrogate, hidden_dims=[8]),
                            [GradientMatching(weight=2.0, integration_steps=3), Regression(weight=0.5)])
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(module, data)
    trainer.save_checkpoint(tmp_path / "api.ckpt")
    hparams = torch.load(tmp_path / "api.ckpt", weights_only=True)["hyper_parameters"]  # would raise on a pickled object
    assert hparams["objectives"][0]["init_args"] == {"weight": 2.0, "integration_steps": 3, "quadrature": "left"}
    loaded = MatchOptModule.load_from_checkpoint(tmp_path / "api.ckpt")
    x = torch.randn(5, data.input_dim)
    assert torch.equal(loaded(x), module(x)) and [t.weight for t in loaded.objectives] == [2.0, 0.5]
    main(["search", "--config", str(TINY_CONFIG), f"--ckpt_path={tmp_path / 'api.ckpt'}",
          f"--trainer.default_root_dir={tmp_path}"])
    captured = capsys.readouterr()
    assert "search (shekel" in captured.out + captured.err
    assert (next(tmp_path.glob("lightning_logs/version_*")) / "results.json").is_file()
