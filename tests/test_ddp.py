"""Two-process DDP on CPU (gloo) through the real CLI, compared with one process."""

import json

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_CONFIG
from test_cli import EXPECTED_TAGS, log_dir, run_cli


def fit(root, *extra):
    result = run_cli(
        "fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={root}",
        "--data.trajectories_per_batch=3", "--search.n_designs=15", *extra, timeout=240,
    )  # a hang (a collective reached by one rank only) fails on the timeout
    assert result.returncode == 0, result.stderr[-3000:]
    return log_dir(root)


def test_two_process_ddp_matches_one_process(tmp_path):
    single = fit(tmp_path / "single")
    ddp = fit(tmp_path / "ddp", "--trainer.devices=2", "--trainer.strategy=ddp")
    one, two = (json.loads((d / "results.json").read_text()) for d in (single, ddp))
    for key in ("score_100th", "score_50th", "score_mean", "predicted_mean"):
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
    assert len(list(ddp.parent.glob("version_*"))) == 1  # files written once, by rank zero
