"""A run killed with SIGKILL and resumed with --ckpt_path last ends where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import REPO, TINY_CONFIG
from test_cli import log_dir, run_cli

ARGS = ["--config", str(TINY_CONFIG), "--trainer.max_epochs=12", "--search.every_n_epochs=4"]


def test_killed_run_resumes_to_the_same_result(tmp_path):
    straight = run_cli("fit", *ARGS, f"--trainer.default_root_dir={tmp_path / 'straight'}")
    assert straight.returncode == 0, straight.stderr[-2000:]

    root = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning_matchopt", "fit", *ARGS, f"--trainer.default_root_dir={root}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not list(root.glob("lightning_logs/version_0/checkpoints/last.ckpt")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"

    resumed = run_cli("fit", *ARGS, f"--trainer.default_root_dir={root}", "--ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(list(root.glob("lightning_logs/version_*"))) == 1  # continued in the killed run's log dir
    expected = json.loads((log_dir(tmp_path / "straight") / "results.json").read_text())
    got = json.loads((log_dir(root) / "results.json").read_text())
    assert got["epoch"] == expected["epoch"] == 12
    for key in ("score_100th", "score_50th", "score_mean", "predicted_mean"):
        assert got[key] == expected[key], key
    assert [h["epoch"] for h in got["history"]] == [4, 8, 12]
