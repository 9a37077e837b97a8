import json
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO, TINY_CONFIG
from lightning_matchopt.cli import main

EXPECTED_TAGS = {
    "train/loss", "train/loss_gm", "train/loss_reg",
    "search/score_100th", "search/score_50th", "search/score_mean", "search/predicted_mean",
}


def run_cli(*args, timeout=300, env=None, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "lightning_matchopt", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env=env,
    )


def log_dir(root):
    (results,) = root.glob("lightning_logs/version_*/results.json")
    return results.parent


@pytest.mark.slow
def test_fit_writes_tensorboard_tags_results_and_designs(tmp_path):
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path}"])
    out = log_dir(tmp_path)
    events = EventAccumulator(str(out))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert EXPECTED_TAGS <= tags, EXPECTED_TAGS - tags
    assert [e.step for e in events.Scalars("search/score_100th")] == [1, 2]  # every epoch, epoch as step
    results = json.loads((out / "results.json").read_text())
    assert {"score_100th", "score_50th", "score_mean", "task", "seed", "epoch"} <= set(results)
    assert results["task"] == "shekel" and results["epoch"] == 2 and results["final"] and results["seed"] == 0
    assert [h["epoch"] for h in results["history"]] == [1, 2]
    # The HPARAMS tab is DesignSearch's session with the final scores; Lightning's -1 placeholder is off.
    assert "hp_metric" not in tags and "_hparams_/experiment" in events.PluginTagToContent("hparams")
    designs = np.load(out / "designs.npz")
    assert designs["designs"].shape == (16, 4) and np.isfinite(designs["scores"]).all()
    assert np.allclose(np.max(designs["normalized_scores"]), results["score_100th"])
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not list(out.glob(".*"))  # no temporary files left behind


@pytest.mark.slow  # two fits
def test_same_seed_gives_identical_results(tmp_path):
    for name in ("a", "b"):
        main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path / name}"])
    first, second = (json.loads((log_dir(tmp_path / n) / "results.json").read_text()) for n in ("a", "b"))
    assert first == second


@pytest.mark.slow
def test_entry_point_help_and_print_config():
    printed = run_cli("fit", "--config", str(TINY_CONFIG), "--model.surrogate.negative_slope=0.7", "--print_config")
    assert printed.returncode == 0
    assert "negative_slope: 0.7" in printed.stdout and "input_dim" not in printed.stdout.split("model:")[1].split("\n")[1]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--data.task=tfbind9"], "unknown task 'tfbind9'; known tasks: ackley, ant, dkitty, ehrlich, files, hopper, linear, "
                                  "quadratic, rosenbrock, shekel, superconductor, tfbind10, tfbind8"),
        (["--model.weight_decay=-1"], "model.weight_decay must be >= 0, got -1"),
        (["--data.n_bins=1"], "data.n_bins must be >= 2, got 1"),
        (["--model.lr=-1"], "model.lr must be > 0, got -1"),
        (["--trainer.max_epochs=-5"], "max_epochs"),
        (["--data.n_bins=1000"], "fewer than n_bins=1000"),
        (["--search.n_designs=5000"], "search.n_designs=5000 exceeds the 184 offline designs trained on"),
        (
            ["--data.task=tfbind8", "--data.task_options=null", "--data.data_root=/nonexistent"],
            "data root '/nonexistent' is not a directory",
        ),
        (
            ["--data.task=tfbind8", "--data.task_options=null", f"--data.data_root={REPO / 'tests'}"],
            "tfbind8: no tf_bind_8-x-*.npy files",
        ),
    ],
)
def test_bad_input_fails_with_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path}", *args])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"matchopt: error: {message}" or (last.startswith("matchopt: error:") and message in last), last
    assert not list(tmp_path.rglob("*")), "a command that failed before training left files behind"


@pytest.mark.slow
def test_cli_error_has_no_traceback(tmp_path):
    result = run_cli("fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path}", "--data.task=nope")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("matchopt: error: unknown task 'nope'")


def test_data_subcommand_checks_the_shared_files(data_root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", "--fast", f"--data-root={data_root}", "tfbind8"])
    assert exit_info.value.code == 0 and "complete" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "check", "TFBind9"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_traced_search_scores_its_path_from_the_start_designs_to_the_end(tmp_path):
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path}", "--search.trace_every=5"])
    out = log_dir(tmp_path)
    results = json.loads((out / "results.json").read_text())
    trace = results["trace"]
    assert [p["step"] for p in trace] == [0, 5, 10, 15, 20]  # steps: 20 in the tiny config
    assert trace[0]["score_100th"] == pytest.approx(results["d_best"])  # start=top: the best offline design
    assert trace[-1]["score_100th"] == results["score_100th"] and trace[-1]["score_50th"] == results["score_50th"]
    assert len({p["score_50th"] for p in trace}) > 1  # the designs moved
    assert "trace" not in results["history"][0]  # only the final search is traced
    events = EventAccumulator(str(out))
    events.Reload()
    assert [e.step for e in events.Scalars("search_path/score_100th")] == [0, 5, 10, 15, 20]


@pytest.mark.slow
def test_shipped_configs_by_name_from_any_folder_without_noise(tmp_path):
    result = run_cli(
        "fit", "--config", "shekel", "--config", "methods/regression", "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2", "--data.task_options={n_samples: 400, max_percentile: 50}",
        "--data.n_bins=16", "--search.n_designs=8", "--search.steps=2", "--search.trace_every=0", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(next(tmp_path.glob("runs/shekel/lightning_logs/version_0/results.json")).read_text())
    assert results["final"] and results["task"] == "shekel"
    saved = (tmp_path / "runs/shekel/lightning_logs/version_0/config.yaml").read_text()
    assert "lightning_matchopt.models.Regression" in saved and "GradientMatching" not in saved  # the overlay's terms
    for noise in ("LeafSpec", "Tip:", "litlogger", "litmodels"):
        assert noise not in result.stdout + result.stderr


def test_a_real_path_wins_over_a_shipped_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shekel").write_text("model:\n  lr: 0.5\n")  # a local file named like a shipped config
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "configs/shekel.yaml", "--config", "shekel", "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "lr: 0.5" in printed and "n_bins: 64" in printed  # the local file over the shipped shekel.yaml


def test_every_shipped_config_has_a_name():
    from lightning_matchopt.config_names import names

    configs = REPO / "configs"
    assert set(names()) == {p.relative_to(configs).with_suffix("").as_posix() for p in configs.rglob("*.yaml")}


def test_configs_command_lists_and_prints_them(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["configs"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert exit_info.value.code == 0 and {"tfbind8", "files", "methods/regression", "trainer/ddp"} <= set(listed)
    with pytest.raises(SystemExit) as exit_info:
        main(["configs", "methods/regression"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == (REPO / "configs" / "methods" / "regression.yaml").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "tfbind9"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "matchopt: error: config 'tfbind9' is neither a file nor a shipped config; did you mean tfbind8? "
        "(matchopt configs lists them)"
    )


@pytest.mark.parametrize("where", ["flag", "yaml"])
def test_a_mistyped_key_is_one_line_with_the_closest_key(where, tmp_path, capsys):
    if where == "flag":
        typo = ["--model.learning_rate", "0.1"]
    else:
        (tmp_path / "typo.yaml").write_text("model:\n  learning_rate: 0.1\n")
        typo = ["--config", str(tmp_path / "typo.yaml")]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(TINY_CONFIG), *typo])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1, err
    assert "model.learning_rate" in err[0] and err[0].endswith("did you mean --model.lr?")


def test_a_prefix_of_a_key_is_not_taken_for_the_key(capsys):
    """argparse would read --trainer.max_epoch as --trainer.max_epochs and start a run; it must not."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(TINY_CONFIG), "--trainer.max_epoch", "3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "matchopt: error: unknown option --trainer.max_epoch; did you mean --trainer.max_epochs?"
    )


def test_a_bad_value_is_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(TINY_CONFIG), "--search.start", "best"])
    assert capsys.readouterr().err.strip() == (
        "matchopt: error: bad value for --search.start: expected one of 'top', 'random_data', 'random', got 'best'"
    )


@pytest.mark.slow
def test_help_lists_every_working_subcommand_and_only_those(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    help_text = capsys.readouterr().out
    assert exit_info.value.code == 0
    listed = [line.split()[0] for line in help_text.split("subcommands")[1].strip().splitlines()[1:] if line.startswith("  ")]
    assert listed == ["fit", "validate", "predict", "search", "data", "grid", "configs"]
    for command in listed:  # each one's own help works
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        out = capsys.readouterr().out
        assert exit_info.value.code == 0 and "usage:" in out
        if command in ("validate", "predict", "search"):  # the project's options first, as for fit
            assert "--search.*" in "\n".join(out.splitlines()[:15]) and "--ckpt_path" in out
    for gone, hint in (("test", ""), ("valdate", "; did you mean validate?"), ("serch", "; did you mean search?")):
        with pytest.raises(SystemExit) as exit_info:
            main([gone])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and f"{gone!r}{hint}" in err[0], err


@pytest.mark.slow
def test_checkpoint_subcommands_misspelled_keys_and_missing_checkpoints_are_one_line(capsys):
    for command in ("validate", "predict", "search"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--config", str(TINY_CONFIG), "--ckpt_pat", "x"])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip() == "matchopt: error: unknown option --ckpt_pat; did you mean --ckpt_path?"
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--config", str(TINY_CONFIG)])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and f"matchopt {command} needs --ckpt_path" in err[0]


def test_fit_help_starts_with_the_projects_options_and_lists_the_tasks(capsys):
    from lightning_matchopt.tasks import TASKS

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    help_text = capsys.readouterr().out
    top = "\n".join(help_text.splitlines()[:15])
    assert all(f"--{group}.*" in top for group in ("data", "model", "search"))
    task_help = " ".join(help_text.split("--data.task TASK")[1].split("--data.data_root")[0].split())
    assert all(name in task_help for name in TASKS)
    assert "--trainer.max_epochs" in help_text and "--checkpoint.save_last" in help_text  # Lightning's help intact


def test_matchopt_data_takes_no_prefix_of_an_option(tmp_path, capsys):
    from lightning_matchopt.commands import main as dispatch

    with pytest.raises(SystemExit) as exit_info:  # with prefixes allowed, this would check tmp_path and exit 1
        dispatch(["data", "check", "--data-r", str(tmp_path), "--fast"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --data-r" in capsys.readouterr().err
