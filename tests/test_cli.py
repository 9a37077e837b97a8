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


def run_cli(*args, timeout=300, env=None):
    return subprocess.run(
        [sys.executable, "-m", "lightning_matchopt", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env=env,
    )


def log_dir(root):
    (results,) = root.glob("lightning_logs/version_*/results.json")
    return results.parent


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
    designs = np.load(out / "designs.npz")
    assert designs["designs"].shape == (16, 4) and np.isfinite(designs["scores"]).all()
    assert np.allclose(np.max(designs["normalized_scores"]), results["score_100th"])
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_same_seed_gives_identical_results(tmp_path):
    for name in ("a", "b"):
        main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path / name}"])
    first, second = (json.loads((log_dir(tmp_path / n) / "results.json").read_text()) for n in ("a", "b"))
    assert first == second


def test_entry_point_help_and_print_config():
    assert "fit" in run_cli("--help").stdout
    printed = run_cli("fit", "--config", str(TINY_CONFIG), "--model.integration_steps=7", "--print_config")
    assert printed.returncode == 0
    assert "integration_steps: 7" in printed.stdout and "input_dim" not in printed.stdout.split("model:")[1].split("\n")[1]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--data.task=tfbind9"], "unknown task 'tfbind9'; known tasks: ackley, ant, dkitty, files, hopper, rosenbrock, shekel, superconductor, tfbind10, tfbind8"),
        (["--model.integration_steps=0"], "model.integration_steps must be >= 1, got 0"),
        (["--data.n_bins=1"], "data.n_bins must be >= 2, got 1"),
        (["--model.lr=-1"], "model.lr must be > 0, got -1"),
        (["--trainer.max_epochs=-5"], "max_epochs"),
        (["--data.n_bins=1000"], "fewer than n_bins=1000"),
        (["--search.n_designs=5000"], "search.n_designs=5000 exceeds the 200 offline designs"),
        (
            ["--data.task=tfbind8", "--data.task_options=null", "--data.data_root=/nonexistent"],
            "data root '/nonexistent' is not a directory",
        ),
    ],
)
def test_bad_input_fails_with_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path}", *args])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"matchopt: error: {message}" or (last.startswith("matchopt: error:") and message in last), last
    assert not list(tmp_path.glob("**/results.json"))


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
