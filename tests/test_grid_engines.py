"""Where the grid's cells run: a GPU a running cell (``--devices``), and submitit jobs that resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import TINY_CONFIG
from lightning_matchopt.commands import grid
from lightning_matchopt.commands.config_names import resolve
from lightning_matchopt.commands.grid import run as grid_run
from lightning_matchopt.commands.grid.devices import DevicePool, GridError, gpus_of, parse_devices


def test_device_pool_gives_each_device_its_share_of_slots():
    pool = DevicePool(parse_devices("0,1", count=2), per_device=2)
    taken = [pool.take(block=False) for _ in range(4)]
    assert taken == ["0", "1", "0", "1"] and pool.take(block=False) is None  # round-robin, then full
    assert pool.peak == {"0": 2, "1": 2}
    pool.give_back("1")
    assert pool.take(block=False) == "1"

    waited = []
    waiter = threading.Thread(target=lambda: waited.append(pool.take()))  # blocks until a slot is free
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not waited
    pool.give_back("0")
    waiter.join(10)
    assert waited == ["0"] and max(pool.peak.values()) == 2


@pytest.mark.parametrize(("value", "message"), [
    ("0,x", "'x' is not a GPU index"), ("0,0", "names a GPU twice"), ("auto", "torch sees no GPU"),
])
def test_bad_devices_say_what_to_give(value, message):
    with pytest.raises(GridError, match=message):
        parse_devices(value, count=0 if value == "auto" else 2)
    assert parse_devices("auto", count=3) == ["0", "1", "2"]
    with pytest.raises(GridError, match="--devices 0,1: torch sees no GPU on this machine; leave --devices out"):
        parse_devices("0,1", count=0)  # a CPU machine: refused before any cell, not 16 failed cells
    with pytest.raises(GridError, match="at least 1"):
        DevicePool(["0"], per_device=0)


def test_a_cell_asks_for_the_gpus_its_trainer_config_trains_on():
    configs = [TINY_CONFIG, Path(resolve("methods/regression"))]
    assert gpus_of(configs, []) == 0  # accelerator: cpu
    assert gpus_of(configs, ["--config", "trainer/gpu"]) == 1
    assert gpus_of(configs, ["--config=trainer/gpu", "--trainer.devices", "2"]) == 2
    assert gpus_of(configs, ["--trainer.accelerator=gpu", "--trainer.devices=[0, 1, 2]"]) == 3
    assert gpus_of(configs, ["--trainer.accelerator=gpu", "--trainer.devices=auto"]) is None  # open: asked of the user


def test_bad_grid_arguments_are_one_line_before_any_cell(tmp_path, capsys, monkeypatch):
    base = ["--tasks", str(TINY_CONFIG), "--methods", "methods/regression", "--seeds", "0", "--root", str(tmp_path)]
    gpus = {"count": 0}
    monkeypatch.setattr("torch.cuda.device_count", lambda: gpus["count"])
    assert grid.main(base + ["--devices", "0,1"]) == 2  # a machine without GPUs: refused before any cell
    assert "--devices 0,1: torch sees no GPU on this machine" in capsys.readouterr().err
    gpus["count"] = 2
    for args, message in [
        (["--devices", "0", "--cells-per-device", "0"], "--cells-per-device 0: it must be at least 1"),
        (["--cells-per-device", "2"], "--cells-per-device needs --devices"),
        (["--engine", "slurm", "--devices", "0"], "SLURM gives each job its GPUs"),
        (["--devices", "0", "--", "--trainer.accelerator=gpu", "--trainer.devices=2"], "--devices gives each cell one GPU"),
    ]:
        assert grid.main(base + args) == 2
        err = capsys.readouterr().err
        assert err.startswith("matchopt grid: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "tiny").exists()  # nothing ran


# The fake cell: records the environment it got and when it ran, and waits (with a deadline) until
# all four cells have started, so the four overlap whatever the machine's speed.
FAKE_CELL = """
import json, os, sys, time
run_dir, cells = sys.argv[1], int(sys.argv[2])
root = os.path.dirname(os.path.dirname(os.path.dirname(run_dir)))
start = time.time()  # before the marker: a cell that sees it ends after this start, however slow this one is
open(os.path.join(root, "started_" + run_dir.replace(os.sep, "_")), "w").close()
while sum(n.startswith("started_") for n in os.listdir(root)) < cells and time.time() - start < 60:
    time.sleep(0.02)
keys = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
record = {"env": {k: os.environ.get(k) for k in keys}, "start": start, "end": time.time()}
json.dump(record, open(os.path.join(run_dir, "env.json"), "w"))
"""


def test_a_devices_grid_gives_each_running_cell_its_own_gpu(tmp_path, monkeypatch, capsys):
    """4 cells, --devices 0,1 --cells-per-device 2: each GPU runs two of them at once, never more."""
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)  # fake cells on fake GPUs
    monkeypatch.setattr(grid_run, "cell_command", lambda run, extra: [sys.executable, "-c", FAKE_CELL, str(run.run_dir), "4"])
    monkeypatch.setattr(grid, "plot", lambda *args: [])  # fake cells: nothing to plot
    code = grid.main(["--tasks", str(TINY_CONFIG), "--methods", "methods/matchopt", "methods/regression",
                      "--seeds", "0", "1", "--root", str(tmp_path), "--devices", "0,1", "--cells-per-device", "2",
                      "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "grid: 4 cells at once on GPUs 0,1 (2 a GPU)" in out  # --workers defaults to the slots
    records = {str(p.parent.relative_to(tmp_path)): json.loads(p.read_text()) for p in sorted(tmp_path.rglob("env.json"))}
    report = "\n".join(f"{cell}: {' '.join(f'{k}={v}' for k, v in r['env'].items())}" for cell, r in records.items())
    (tmp_path / "cell_envs.txt").write_text(report + "\n")
    print(f"environment of each cell (--devices 0,1 --cells-per-device 2):\n{report}")
    assert len(records) == 4, report
    assert all(r["env"]["OMP_NUM_THREADS"] == r["env"]["MKL_NUM_THREADS"] == "1" for r in records.values()), report
    by_device = {}
    for r in records.values():
        by_device.setdefault(r["env"]["CUDA_VISIBLE_DEVICES"], []).append(r)
    assert sorted(by_device) == ["0", "1"] and all(len(v) == 2 for v in by_device.values()), report
    for device, cells in by_device.items():  # at most two at once on one GPU; here exactly two
        events = sorted([(r["start"], 1) for r in cells] + [(r["end"], -1) for r in cells], key=lambda e: (e[0], e[1]))
        running = peak = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        assert peak == 2, f"GPU {device}: {peak} cells at once\n{report}"
    fit_log = (tmp_path / "tiny" / "matchopt" / "seed_0" / "fit.log").read_text()
    assert fit_log.startswith("grid: CUDA_VISIBLE_DEVICES=")  # the log says which GPU a cell had


# -- submitit ---------------------------------------------------------------------------------------


def _grid_command(root: Path, *engine: str) -> list[str]:
    return [sys.executable, "-m", "lightning_matchopt", "grid", "--tasks", str(TINY_CONFIG),
            "--methods", "methods/matchopt", "methods/regression", "--seeds", "0", "1", "--root", str(root),
            "--threads", "1", *engine, "--", "--trainer.max_epochs=3"]


def _cells(root: Path) -> list[Path]:
    return [root / "tiny" / m / f"seed_{s}" for m in ("matchopt", "regression") for s in (0, 1)]


def _finished(cell: Path) -> bool:
    return any(json.loads(p.read_text()).get("final") for p in cell.glob("lightning_logs/version_*/results.json"))


@pytest.mark.slow
def test_a_submitit_grid_killed_half_way_resumes_to_the_same_table(tmp_path):
    """2 x 2 through submitit's local executor, killed with a cell half trained: the rerun's table is the uninterrupted one's."""
    pytest.importorskip("submitit")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = subprocess.Popen(_grid_command(tmp_path / "ref", "--engine", "submitit-local", "--workers", "2"),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    root = tmp_path / "killed"
    killed = subprocess.Popen(_grid_command(root, "--engine", "submitit-local", "--workers", "1"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline, half_trained = time.monotonic() + 300, None
    try:
        while half_trained is None:  # one cell done, another with an epoch's last.ckpt and no results
            assert killed.poll() is None, "the grid ended before it could be killed half way"
            assert time.monotonic() < deadline, "no cell half trained within 300 s"
            cells = _cells(root)
            if any(_finished(c) for c in cells):
                half_trained = next((c for c in cells if not _finished(c) and list(c.rglob("last.ckpt"))), None)
            time.sleep(0.05)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # the grid, submitit's job and the cell's fit, at once
        killed.wait()
    assert not _finished(half_trained)

    rerun = subprocess.run(_grid_command(root, "--engine", "submitit-local", "--workers", "1"),
                           capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "4 runs, 1 already done, 3 to run" in rerun.stdout, rerun.stdout  # one at a time: one done, one half
    assert all(_finished(c) for c in _cells(root))
    assert "Restoring states from the checkpoint path" in (half_trained / "fit.log").read_text()  # --ckpt_path last

    out, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, out
    table, expected = (root / "results.md").read_text(), (tmp_path / "ref" / "results.md").read_text()
    print(table)
    assert table == expected
    # and every score to the last digit, not only to the table's three decimals
    assert (root / "runs.csv").read_text() == (tmp_path / "ref" / "runs.csv").read_text()


def test_a_slurm_cell_asks_sbatch_for_its_gpus_and_cpus(tmp_path, monkeypatch):
    """What --engine slurm submits for a trainer/gpu cell, read from the script a fake sbatch receives."""
    pytest.importorskip("submitit")
    from lightning_matchopt.commands.grid import engines
    from lightning_matchopt.commands.grid.devices import cell_env

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in [("srun", "exit 0"), ("sbatch", 'cp "$1" "$(dirname "$0")/received.sh"; echo "Submitted batch job 4242"')]:
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ex = engines.executor("slurm", tmp_path / "grid" / ".submitit", 240, "gpu", ["source .venv/bin/activate"])
    cell = grid_run.Run(TINY_CONFIG, Path(resolve("methods/regression")), 0, tmp_path / "grid")
    extra = ["--config", "trainer/gpu", "--trainer.devices=2"]
    gpus = gpus_of([cell.task_config, cell.method_config], extra)
    job = engines.submit_cell(ex, cell, extra, gpus, 8, cell_env(8))
    script = (bin_dir / "received.sh").read_text()
    assert job.job_id == "4242"
    for line in ("--gpus-per-node=2", "--ntasks-per-node=2", "--cpus-per-task=8", "--partition=gpu", "--time=240", "--nodes=1"):
        assert f"#SBATCH {line}\n" in script, script
    assert "source .venv/bin/activate" in script and "--signal=USR2@" in script  # submitit requeues it at the limit

    cpu_ex = engines.executor("slurm", tmp_path / "grid" / ".submitit", 240, None, [])  # a CPU cell: no GPU option
    engines.submit_cell(cpu_ex, cell, [], gpus_of([cell.task_config, cell.method_config], []), 2, cell_env(2))
    script = (bin_dir / "received.sh").read_text()
    assert "gpus" not in script and "#SBATCH --ntasks-per-node=1\n" in script and "#SBATCH --cpus-per-task=2\n" in script, script
