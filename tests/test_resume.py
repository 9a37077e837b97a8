"""A run killed (SIGKILL), stopped (SIGTERM, SIGUSR1) or preempted on SLURM resumes to the uninterrupted result."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from conftest import REPO, TINY_CONFIG
from test_cli import log_dir, run_cli

pytestmark = pytest.mark.slow  # matchopt fit in subprocesses, killed and resumed; SLURM and DDP

ARGS = ["--config", str(TINY_CONFIG), "--trainer.max_epochs=12", "--search.every_n_epochs=4"]
SCORES = ("score_100th", "score_50th", "score_mean", "predicted_mean")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Results of the uninterrupted run."""
    root = tmp_path_factory.mktemp("straight")
    result = run_cli("fit", *ARGS, f"--trainer.default_root_dir={root}")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((log_dir(root) / "results.json").read_text())


def trained_epochs(root):
    """Epochs in the newest last.ckpt under ``root`` (0: none yet)."""
    found = list(root.glob("lightning_logs/version_*/checkpoints/last.ckpt"))  # version_0, or the job id on SLURM
    return torch.load(found[0], weights_only=True)["callbacks"]["DesignSearch"]["trained"]["epoch"] if found else 0


class RequeueSignalWhileTheWriterIsLocked(Callback):
    """SIGUSR1 to its own process at the second epoch's start, while it holds the TensorBoard writer's lock.

    The worst moment for a handler that flushes the logger: run inside the signal handler, that flush
    waits on this lock forever.
    """

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            with trainer.logger.experiment._get_file_writer().event_writer._async_writer._lock:
                os.kill(os.getpid(), signal.SIGUSR1)
                time.sleep(0.5)  # a handler that runs at once runs here


class LateGlooWorkerAtExit(Callback):
    """A collective whose gloo worker thread is still busy with Python when the run ends.

    The worst moment for a rank's exit: left to the interpreter's shutdown, that thread needs the
    GIL of a finalizing interpreter and the rank aborts ("terminate called without an active
    exception", SIGABRT) instead of exiting with its status.
    """

    def on_exception(self, trainer, pl_module, exception):
        work = torch.distributed.all_reduce(torch.ones(1), async_op=True)  # every rank gets here
        work.get_future().then(lambda future: time.sleep(1.0))  # runs on the gloo worker thread


def interrupt(root, send, env=None, extra=()):
    """Start a run, ``send(pid)`` once it has checkpointed an epoch of its own, and wait: (exit code, stderr)."""
    before = trained_epochs(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning_matchopt", "fit", *ARGS, f"--trainer.default_root_dir={root}", *extra],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.time() + 120
        while trained_epochs(root) <= before and time.time() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.02)
        send(proc.pid)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a failed test leaves no run behind
            proc.kill()
            proc.communicate()
    for results in root.glob("lightning_logs/version_*/results.json"):
        assert not json.loads(results.read_text())["final"], "the run ended before the signal"
    return proc.returncode, err


def assert_resumes_to(straight, root, env=None):
    resumed = run_cli("fit", *ARGS, f"--trainer.default_root_dir={root}", "--ckpt_path=last", env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(list(root.glob("lightning_logs/version_*"))) == 1  # continued in the interrupted run's log dir
    got = json.loads((log_dir(root) / "results.json").read_text())
    assert got["epoch"] == straight["epoch"] == 12
    for key in SCORES:
        assert got[key] == straight[key], key
    assert [h["epoch"] for h in got["history"]] == [4, 8, 12]


def test_killed_run_resumes_to_the_same_result(straight, tmp_path):
    code, _ = interrupt(tmp_path, lambda pid: os.kill(pid, signal.SIGKILL))
    assert code == -signal.SIGKILL
    assert_resumes_to(straight, tmp_path)
    # The resumed run's config.yaml is its own (no logger pinned to its log dir), so a search with
    # it writes where it is told, and the fit's results stay.
    fit_dir = log_dir(tmp_path)
    config, results = (fit_dir / "config.yaml").read_text(), (fit_dir / "results.json").read_text()
    assert "logger: null" in config
    searched = run_cli("search", "--config", str(fit_dir / "config.yaml"), f"--trainer.default_root_dir={tmp_path / 'search'}",
                       f"--ckpt_path={fit_dir / 'checkpoints' / 'last.ckpt'}", "--search.lr=0.05")
    assert searched.returncode == 0, searched.stderr[-2000:]
    assert (fit_dir / "results.json").read_text() == results and (fit_dir / "config.yaml").read_text() == config
    results = next((tmp_path / "search").glob("lightning_logs/version_*/results.json"))
    assert json.loads(results.read_text())["search"]["lr"] == 0.05


def test_stop_signals_end_at_an_epoch_with_one_line_and_resume(straight, tmp_path):
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    for signum, extra in ((signal.SIGUSR1, ()), (signal.SIGTERM, ("--ckpt_path=last",))):  # stopped twice
        code, err = interrupt(tmp_path, lambda pid, signum=signum: os.kill(pid, signum), extra=extra)
        assert code == 128 + signum and "Traceback" not in err, err[-2000:]
        line = err.strip().splitlines()[-1]
        match = re.fullmatch(
            rf"matchopt: error: stopped by {signum.name} after epoch (\d+) of 12; {re.escape(str(last))} holds it: "
            r"run the same fit command with --ckpt_path last to continue",
            line,
        )
        assert match and trained_epochs(tmp_path) == int(match[1]), line
    assert_resumes_to(straight, tmp_path)


def slurm_env(tmp_path, job_id, **variables):
    """The environment of a SLURM job step whose ``scontrol`` only appends its arguments to ``tmp_path/scontrol.log``.

    Read the log with ``scontrol_calls``: the shell creates the file before ``echo`` writes to it.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    # The file appears before its line, always (under load it did in CI): the tests must wait for the line.
    (bin_dir / "scontrol").write_text('#!/bin/sh\n{ sleep 0.3; echo "$@"; } >> "$SCONTROL_LOG"\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_NAME": "matchopt", "SLURM_JOB_ID": job_id, "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost"}
    return {**os.environ, **slurm, **variables, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "SCONTROL_LOG": str(tmp_path / "scontrol.log")}


def scontrol_calls(tmp_path):
    """The complete lines written so far by the fake ``scontrol``, each split into its arguments."""
    log = tmp_path / "scontrol.log"
    text = log.read_text() if log.is_file() else ""
    return [line.split() for line in text.splitlines(keepends=True) if line.endswith("\n")]


def wait_for_scontrol(tmp_path, deadline):
    """Wait until the fake ``scontrol`` has written one complete line (or the deadline passes)."""
    while not scontrol_calls(tmp_path) and time.time() < deadline:
        time.sleep(0.02)
    assert scontrol_calls(tmp_path), "no requeue before the deadline after SIGUSR1"


def test_slurm_preemption_requeues_and_resumes(straight, tmp_path):
    """Lightning's SLURM auto-requeue: SIGUSR1 saves an HPC checkpoint and requeues; SLURM then sends SIGTERM.

    The SIGUSR1 comes from inside the run while it holds the TensorBoard writer's lock, where
    Lightning's handler, run at once, would hang.
    """
    env = slurm_env(tmp_path, "4242", SLURM_NTASKS="1", SLURM_PROCID="0", SLURM_LOCALID="0",
                    PYTHONPATH=str(REPO / "tests"))
    root = tmp_path / "run"

    def preempt(pid):
        wait_for_scontrol(tmp_path, time.time() + 60)
        os.kill(pid, signal.SIGTERM)

    callback = f"--trainer.callbacks+={__name__}.{RequeueSignalWhileTheWriterIsLocked.__name__}"
    code, err = interrupt(root, preempt, env, extra=(callback,))
    assert scontrol_calls(tmp_path) == [["requeue", "4242"]]
    assert list(root.glob("hpc_ckpt_*.ckpt"))  # Lightning's own save on SIGUSR1
    assert code == 128 + signal.SIGTERM and "Traceback" not in err, err[-2000:]
    stopped = re.search(r"matchopt: stopped by SIGTERM in epoch (\d+); last.ckpt holds the epoch before: continue "
                        r"with --ckpt_path last", err)
    assert stopped and 2 <= int(stopped[1]) < 12, err[-2000:]
    assert_resumes_to(straight, root, env)


def test_slurm_requeue_signal_to_one_ddp_rank_is_handled_by_all_at_the_same_batch(tmp_path):
    """Under DDP the requeue handler saves a checkpoint (a collective): a signal to one rank must not hang the others.

    Both ranks then stop on SIGTERM with status 143 even when a gloo worker thread is still busy
    as they exit (``LateGlooWorkerAtExit``).
    """
    root = tmp_path / "run"
    env = slurm_env(tmp_path, "4243", SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", MASTER_PORT=str(29500 + os.getpid() % 1000),
                    PYTHONPATH=str(REPO / "tests"))
    late_worker = f"--trainer.callbacks+={__name__}.{LateGlooWorkerAtExit.__name__}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lightning_matchopt", "fit", *ARGS, "--trainer.max_epochs=100",  # stopped long before
             f"--trainer.default_root_dir={root}", "--trainer.devices=2", "--trainer.strategy=ddp", late_worker],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**env, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
        )
        for rank in (0, 1)
    ]
    try:
        deadline = time.time() + 120
        while not trained_epochs(root) and time.time() < deadline:
            assert all(p.poll() is None for p in procs), procs[0].communicate()[1][-2000:]
            time.sleep(0.02)
        os.kill(procs[1].pid, signal.SIGUSR1)  # rank 1 only
        wait_for_scontrol(tmp_path, deadline)
        assert list(root.glob("hpc_ckpt_*.ckpt"))
        for p in procs:
            p.send_signal(signal.SIGTERM)
        errs = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert scontrol_calls(tmp_path) == [["requeue", "4243"]]  # by rank 0, once
    assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, errs[0][-2000:] + errs[1][-2000:]
    assert "matchopt: stopped by SIGTERM in epoch" in errs[0] and "Traceback" not in errs[0] + errs[1]
    assert "terminate called" not in errs[0] + errs[1]
