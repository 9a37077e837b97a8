"""Two-process DDP on CPU (gloo) through the real CLI, compared with one process."""

import json
import os
from functools import partial

import lightning as L
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_CONFIG
from lightning_matchopt import DesignSearch, MatchOptDataModule, MatchOptModule
from lightning_matchopt.cli import main
from lightning_matchopt.models import MLPSurrogate
from lightning_matchopt.tasks import Shekel
from test_cli import EXPECTED_TAGS, log_dir, run_cli

pytestmark = pytest.mark.slow  # two-process DDP runs


def fit(root, *extra):
    result = run_cli(
        "fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}",
        "--data.trajectories_per_batch=3", "--search.n_designs=15", *extra, timeout=240,
    )  # a hang (a collective reached by one rank only) fails on the timeout
    assert result.returncode == 0, result.stderr[-3000:]
    return log_dir(root)


ENSEMBLE = ["--model.surrogate=lightning_matchopt.models.EnsembleMLP", "--model.surrogate.ensemble_size=2",
            "--search.objective=lcb"]


@pytest.mark.parametrize("method", [[], ENSEMBLE], ids=["single", "ensemble"])
def test_two_process_ddp_matches_one_process(tmp_path, method):
    single = fit(tmp_path / "single", *method)
    ddp = fit(tmp_path / "ddp", "--trainer.devices=2", "--trainer.strategy=ddp", *method)
    one, two = (json.loads((d / "results.json").read_text()) for d in (single, ddp))
    for key in ("score_100th", "score_50th", "score_mean", "predicted_mean", "predicted_std"):
        assert abs(one[key] - two[key]) < 1e-4, (key, one[key], two[key])
    d_one, d_two = np.load(single / "designs.npz"), np.load(ddp / "designs.npz")
    assert d_two["designs"].shape == (15, 4)  # each design searched and scored once, gathered in order
    assert np.allclose(d_one["designs"], d_two["designs"], atol=1e-4)
    assert np.allclose(d_one["scores"], d_two["scores"], atol=1e-4)
    events = EventAccumulator(str(ddp))
    events.Reload()
    assert EXPECTED_TAGS <= set(events.Tags()["scalars"])
    losses = [EventAccumulator(str(d)) for d in (single, ddp)]
    for acc in losses:
        acc.Reload()
    (l1, l2) = ([e.value for e in acc.Scalars("train/loss")] for acc in losses)
    assert np.allclose(l1, l2, rtol=1e-4)  # the synced loss is the whole-batch loss
    for tag in ("val/loss_gm", "val/loss_reg", "val/spearman", "val/pearson"):  # held-out rows split, then synced
        v1, v2 = ([e.value for e in acc.Scalars(tag)] for acc in losses)
        assert len(v1) == 2 and np.allclose(v1, v2, atol=1e-4), (tag, v1, v2)
    assert len(list(ddp.parent.glob("version_*"))) == 1  # files written once, by rank zero
    assert np.array_equal(d_one["duplicate"], d_two["duplicate"]) and (ddp / "candidates.csv").is_file()

    # Prediction on two processes: each predicts a share of the rows; rank zero writes them all, in order.
    checkpoint = f"--ckpt_path={ddp / 'checkpoints' / 'last.ckpt'}"
    two = run_cli("predict", "--config", str(TINY_CONFIG), checkpoint, f"--trainer.default_root_dir={tmp_path / 'p2'}",
                  "--trainer.devices=2", "--trainer.strategy=ddp", "--data.predict_batch_size=64", timeout=240)
    assert two.returncode == 0, two.stderr[-3000:]
    main(["predict", "--config", str(TINY_CONFIG), checkpoint, f"--trainer.default_root_dir={tmp_path / 'p1'}"])
    p1, p2 = (np.load(next((tmp_path / p).glob("lightning_logs/version_*/predictions.npz"))) for p in ("p1", "p2"))
    assert p2["predictions"].shape == (200,) and np.allclose(p1["predictions"], p2["predictions"], atol=1e-6)
    assert np.array_equal(p1["designs"], p2["designs"])


class CountingShekel(Shekel):
    """Shekel whose oracle appends '<pid> <number of designs>' to a file for every call."""

    def __init__(self, calls_file):
        super().__init__(n_samples=400)
        self.calls_file = calls_file

    def oracle(self, designs, timeout=None):
        with open(self.calls_file, "a") as f:
            f.write(f"{os.getpid()} {len(designs)}\n")
        return super().oracle(designs, timeout)


def test_ddp_spawn_calls_the_oracle_once_per_design(tmp_path):
    calls = tmp_path / "oracle_calls.txt"
    datamodule = MatchOptDataModule(task="shekel", n_bins=16, trajectories_per_batch=2, seed=0)
    datamodule.task = CountingShekel(str(calls))
    model = MatchOptModule(datamodule.input_dim, partial(MLPSurrogate, hidden_dims=(16,)))
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=2, default_root_dir=tmp_path,
        callbacks=[DesignSearch(n_designs=15, steps=5, every_n_epochs=1)],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=datamodule)
    rows = [line.split() for line in calls.read_text().splitlines()]
    assert len({pid for pid, _ in rows}) == 2  # both ranks asked the oracle ...
    assert sum(int(n) for _, n in rows) == 2 * 15  # ... each design once per search (two searches)
    results = json.loads(next(tmp_path.glob("lightning_logs/version_*/results.json")).read_text())
    assert results["n_designs"] == 15 and results["epoch"] == 2
