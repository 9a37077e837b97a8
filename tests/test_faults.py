"""Faults after training started lose nothing: a crashing or hanging oracle, a bad checkpoint, DDP."""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import REPO, TINY_CONFIG
from lightning_matchopt.cli import main
from test_cli import log_dir, run_cli
from test_continuous_tasks import write_shards

TESTS = str(REPO / "tests")
FILES = ["--config", str(REPO / "configs" / "files.yaml"), "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false",
         "--data.n_bins=8", "--model.surrogate.hidden_dims=[32]", "--search.n_designs=8", "--search.steps=10"]


@pytest.fixture
def files_run(tmp_path):
    """CLI arguments of a files-task run scored by tests/faulty_oracles.py."""
    x = np.random.default_rng(0).uniform(size=(200, 3))
    np.savez(tmp_path / "data.npz", x=x, y=-((x - 0.7) ** 2).sum(1))
    options = f"--data.task_options={{path: {tmp_path / 'data.npz'}, oracle: 'faulty_oracles:oracle'}}"
    return lambda root, *extra: [*FILES, options, f"--trainer.default_root_dir={tmp_path / root}", *extra]


def fails(args, capsys, code):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == code and "Traceback" not in err, err[-2000:]
    return err.strip().splitlines()[-1]


@pytest.mark.slow  # a fit, its failed final search and a resumed rerun
def test_crashing_oracle_keeps_model_and_designs_and_a_rerun_scores_them(files_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MATCHOPT_TEST_ORACLE", "crash")
    args = files_run("run", "--search.every_n_epochs=1")
    line = fails(["fit", *args], capsys, 1)
    out = tmp_path / "run" / "lightning_logs" / "version_0"
    assert line == (
        "matchopt: error: the oracle faulty_oracles:oracle failed in the final search (epoch 2): RuntimeError: "
        f"simulator crashed on rank 0. Kept: the trained model ({out / 'checkpoints' / 'last.ckpt'}) and the unscored "
        f"designs with the surrogate's predictions ({out / 'designs.npz'}); to score them when the oracle works, "
        "run the same fit command again with --ckpt_path last (it redoes only the final search)"
    )
    # the mid-training search failed too: reported, recorded, and training went on
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["callbacks"]["DesignSearch"]["trained"]["epoch"] == 2  # the final model, saved before the search
    designs = np.load(out / "designs.npz")
    assert designs["designs"].shape == (8, 3) and np.isfinite(designs["predictions"]).all()
    assert np.isnan(designs["scores"]).all()
    results = json.loads((out / "results.json").read_text())
    assert results["final"] and results["oracle_error"] == "RuntimeError: simulator crashed on rank 0"
    assert [h.get("oracle_error", "").startswith("RuntimeError") for h in results["history"]] == [True, True]
    assert list(out.glob("events.out.tfevents.*"))

    monkeypatch.setenv("MATCHOPT_TEST_ORACLE", "ok")  # the oracle works again: the same command scores them
    main(["fit", *args, "--ckpt_path=last"])
    main(["fit", *files_run("straight", "--search.every_n_epochs=1")])
    assert len(list((tmp_path / "run" / "lightning_logs").iterdir())) == 1
    got, expected = (json.loads((log_dir(tmp_path / r) / "results.json").read_text()) for r in ("run", "straight"))
    assert "oracle_error" not in got and got["epoch"] == expected["epoch"] == 2
    for key in ("score_100th", "score_50th", "score_mean", "predicted_mean"):
        assert got[key] == expected[key], key
    assert [h["epoch"] for h in got["history"]] == [1, 2] and "oracle_error" in got["history"][0]
    assert np.array_equal(np.load(out / "designs.npz")["designs"], designs["designs"])  # the designs it kept


@pytest.mark.slow  # waits out an oracle's timeout in a subprocess
def test_hanging_oracle_is_stopped_by_the_timeout(files_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MATCHOPT_TEST_ORACLE", "hang")
    monkeypatch.setenv("MATCHOPT_TEST_PIDFILE", str(tmp_path / "oracle.pid"))
    line = fails(["fit", *files_run("run", "--search.oracle_timeout=2")], capsys, 1)
    assert line.startswith("matchopt: error: the oracle faulty_oracles:oracle failed in the final search (epoch 2): "
                           "OracleError: the oracle faulty_oracles:oracle did not return within 2 s "
                           "(search.oracle_timeout); it was stopped. Kept: the trained model ("), line
    with pytest.raises(ProcessLookupError):  # the hung oracle's process is gone
        os.kill(int((tmp_path / "oracle.pid").read_text()), 0)
    assert (log_dir(tmp_path / "run") / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_hopper_workers_that_outlive_the_timeout_are_stopped(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    rng = np.random.default_rng(0)
    write_shards(tmp_path, "hopper_controller", "hopper_controller", rng.normal(0, 0.1, (64, 5126)), rng.normal(size=64), 64)
    line = fails(["fit", "--config", str(TINY_CONFIG), "--data.task=hopper", f"--data.data_root={tmp_path}",
                  "--data.task_options={workers: 1}", "--data.n_bins=8", "--model.surrogate.hidden_dims=[8]",
                  "--trainer.max_epochs=1",
                  f"--trainer.default_root_dir={tmp_path / 'run'}", "--search.n_designs=2", "--search.steps=2",
                  "--search.oracle_timeout=0.1"], capsys, 1)
    assert "failed in the final search (epoch 1): OracleError: hopper: the episodes did not finish within 0.1 s" in line


@pytest.mark.slow
def test_ddp_ranks_agree_on_an_oracle_that_fails_on_one_rank(files_run, tmp_path):
    env = {**os.environ, "MATCHOPT_TEST_ORACLE": "crash_on_rank1", "PYTHONPATH": TESTS}
    args = files_run("ddp", "--search.every_n_epochs=1", "--trainer.devices=2", "--trainer.strategy=ddp",
                     "--data.trajectories_per_batch=2")
    result = run_cli("fit", *args, timeout=240, env=env)  # a rank left waiting in a collective hangs: the timeout fails
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("matchopt: error:")]
    assert len(errors) == 1 and "(epoch 2): RuntimeError: simulator crashed on rank 1. Kept:" in errors[0], errors
    assert result.stdout.count("search (epoch 1): the oracle faulty_oracles:oracle failed: RuntimeError: simulator "
                               "crashed on rank 1; designs.npz holds the designs unscored") == 1
    assert "Traceback" not in result.stderr
    out = log_dir(tmp_path / "ddp")
    assert np.load(out / "designs.npz")["designs"].shape == (8, 3)  # both ranks' designs, gathered before the oracle


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-epoch run: its log dir and results."""
    root = tmp_path_factory.mktemp("trained")
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}"])
    return log_dir(root)


def copy_run(trained, tmp_path):
    shutil.copytree(trained.parent.parent, tmp_path / "run")
    return tmp_path / "run", tmp_path / "run" / "lightning_logs" / "version_0" / "checkpoints"


def test_checkpoints_are_atomic_and_keep_the_previous_epoch(trained):
    folder = trained / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "previous.ckpt"]  # no temporary file left
    epochs = [torch.load(folder / f, weights_only=True)["callbacks"]["DesignSearch"]["trained"]["epoch"]
              for f in ("previous.ckpt", "last.ckpt")]
    assert epochs == [1, 2]


@pytest.mark.slow
def test_a_moved_run_resumes_into_its_own_last_checkpoint(trained, tmp_path):
    """Lightning reloads no last_model_path when the folder changed: no last-v1.ckpt may appear beside a stale last.ckpt."""
    root, folder = copy_run(trained, tmp_path)  # the run was moved (or resumed from another cwd): another dirpath
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}", "--ckpt_path=last",
          "--trainer.max_epochs=3"])
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "previous.ckpt"]
    epochs = [torch.load(folder / f, weights_only=True)["callbacks"]["DesignSearch"]["trained"]["epoch"]
              for f in ("previous.ckpt", "last.ckpt")]
    assert epochs == [2, 3]  # a later --ckpt_path last continues from epoch 3, not 2


@pytest.mark.slow
def test_unreadable_last_checkpoint_resumes_from_the_previous_one(trained, tmp_path, capsys):
    root, folder = copy_run(trained, tmp_path)
    data = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(data[: len(data) // 2])  # truncated, as a full disk or a bad copy leaves it
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}", "--ckpt_path=last"])
    assert f"matchopt: {folder / 'last.ckpt'} cannot be read; resuming from {folder / 'previous.ckpt'}, one epoch earlier" \
        in capsys.readouterr().err
    got, expected = (json.loads((d / "results.json").read_text()) for d in (log_dir(root), trained))
    for key in ("score_100th", "score_50th", "score_mean", "predicted_mean"):
        assert got[key] == expected[key], key  # epoch 2 trained again from epoch 1: the same model
    assert [h["epoch"] for h in got["history"]] == [1, 2]


@pytest.mark.parametrize(
    "case,extra,message",
    [
        ("garbage", [], "): it is truncated, empty or not a Lightning checkpoint; "
                        "resume from another one (--ckpt_path FILE) or start fresh without --ckpt_path"),
        ("both truncated", ["--ckpt_path=last"], "neither {last} nor {previous} can be read: start fresh without --ckpt_path"),
        ("another task", ["--data.task=ackley", "--data.task_options={dim: 4, n_samples: 400}", "--ckpt_path=last"],
         "was trained on task 'shekel', not 'ackley': pass a checkpoint of this run, or start fresh"),
        ("another surrogate", ["--model.surrogate.hidden_dims=[16]", "--ckpt_path=last"],
         "holds another surrogate (surrogate.net.0.weight: (32, 4) in the file, (16, 4) here; another input width"),
    ],
)
def test_bad_checkpoints_get_one_line(trained, tmp_path, capsys, case, extra, message):
    root, folder = copy_run(trained, tmp_path)
    if case == "garbage":
        (tmp_path / "notes.ckpt").write_text("hello, this is not a checkpoint\n")
        extra = [f"--ckpt_path={tmp_path / 'notes.ckpt'}"]
    if case == "both truncated":
        for name in ("last.ckpt", "previous.ckpt"):
            (folder / name).write_bytes((folder / name).read_bytes()[:1000])
    line = fails(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}", *extra], capsys, 2)
    assert line.startswith("matchopt: error: checkpoint ") or line.startswith("matchopt: error: neither"), line
    assert message.format(last=folder / "last.ckpt", previous=folder / "previous.ckpt") in line, line
    assert len(list((root / "lightning_logs").iterdir())) == 1  # nothing started
