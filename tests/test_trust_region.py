"""The search's trust region: search.max_distance (vectors) and search.max_edits (tokens), enforced at every step."""

import json
from functools import partial

import lightning as L
import numpy as np
import pytest
import torch

from conftest import TINY_CONFIG
from lightning_matchopt import DesignSearch, MatchOptDataModule, MatchOptModule
from lightning_matchopt.cli import main
from lightning_matchopt.errors import ConfigError
from lightning_matchopt.models import MLPSurrogate
from lightning_matchopt.search.ascent import gradient_ascent
from lightning_matchopt.search.settings import check_settings
from lightning_matchopt.search.starts import search_start
from lightning_matchopt.search.trust_region import check_region, trust_region, within_distance, within_edits
from lightning_matchopt.tasks.base import to_tokens

LENGTH, CLASSES = 6, 4  # token designs: 6 positions of 4 classes, 3 logits a position


def token_space(seed=0):
    """A z-scoring of the features (random mean and std, as a data module's) and random starts and moves."""
    g = torch.Generator().manual_seed(seed)
    width = LENGTH * (CLASSES - 1)
    mean = torch.randn(width, generator=g, dtype=torch.float64)
    std = torch.rand(width, generator=g, dtype=torch.float64) + 0.5
    denormalize = lambda z: z * std.to(z) + mean.to(z)  # noqa: E731 (MatchOptDataModule.denormalize_x's arithmetic)
    start = torch.randn(40, width, generator=g)
    x = start + 2 * torch.randn(40, width, generator=g)  # most designs change most positions
    return denormalize, start, x


def decoded(z, denormalize):
    """What the written designs hold: to_tokens of the raw features (Task.from_features)."""
    return to_tokens(denormalize(z.double()).numpy().reshape(len(z), LENGTH, CLASSES - 1))


def within_edits_by_loop(x, start, k, denormalize):
    """The definition, one design and one position at a time, with numpy's argmax."""
    out = x.clone()
    for i in range(len(x)):
        raw, raw_start = (denormalize(z[i].double()).numpy().reshape(LENGTH, CLASSES - 1) for z in (x, start))
        padded = np.concatenate([np.zeros((LENGTH, 1)), raw], axis=1)
        new, old = to_tokens(raw), to_tokens(raw_start)
        changed = [p for p in range(LENGTH) if new[p] != old[p]]
        margin = {p: padded[p, new[p]] - padded[p, old[p]] for p in changed}
        for p in sorted(changed, key=lambda p: (-margin[p], p))[k:]:
            span = slice(p * (CLASSES - 1), (p + 1) * (CLASSES - 1))
            out[i, span] = start[i, span]
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_edit_projection_equals_its_definition(k):
    denormalize, start, x = token_space()
    projected = within_edits(x, start, k, denormalize, CLASSES)
    assert torch.equal(projected, within_edits_by_loop(x, start, k, denormalize))
    search_projection = trust_region(start, k, None, CLASSES, denormalize)  # the start's tokens decoded once
    assert torch.equal(search_projection(x), projected)
    edits = (decoded(projected, denormalize) != decoded(start, denormalize)).sum(1)
    before = (decoded(x, denormalize) != decoded(start, denormalize)).sum(1)
    assert edits.max() <= k and (edits == np.minimum(before, k)).all()  # designs over the budget end at its edge
    assert (before > k).sum() >= 10  # the budget binds for many designs


def test_equal_margins_keep_the_earlier_position():
    denormalize = lambda z: z  # noqa: E731
    start = torch.zeros(1, 2 * 2)  # two positions of 3 classes, both decode to class 0
    x = torch.tensor([[1.0, 0.5, 1.0, 0.5]])  # both move to class 1 by the same margin
    assert torch.equal(within_edits(x, start, 1, denormalize, 3), torch.tensor([[1.0, 0.5, 0.0, 0.0]]))


def test_the_distance_projection_keeps_inside_points_and_puts_outside_ones_on_the_sphere():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(50, 5, generator=g, dtype=torch.float64)
    scale = torch.linspace(0.1, 3, 50, dtype=torch.float64)[:, None]
    x = start + torch.randn(50, 5, generator=g, dtype=torch.float64) * scale
    radius = 1.5
    projected = within_distance(x, start, radius)
    outside = (x - start).norm(dim=1) > radius
    assert 10 < outside.sum() < 40
    assert torch.equal(projected[~outside], x[~outside])  # bit for bit
    moved, wanted = projected[outside] - start[outside], x[outside] - start[outside]
    assert torch.allclose(moved.norm(dim=1), torch.full((int(outside.sum()),), radius, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(torch.nn.functional.cosine_similarity(moved, wanted, dim=1), torch.ones(1, dtype=torch.float64))
    for i in range(len(x)):  # the definition, one design at a time
        d = float(np.linalg.norm((x[i] - start[i]).numpy()))
        expected = x[i] if d <= radius else start[i] + radius * (x[i] - start[i]) / d
        assert torch.allclose(projected[i], expected, atol=1e-12)


def test_every_step_of_a_search_lies_inside_its_region():
    denormalize, start, _ = token_space(1)
    torch.manual_seed(0)
    net = MLPSurrogate(start.shape[1], (16,))
    seen = []
    x = gradient_ascent(net, start, steps=30, lr=0.3, observe=lambda s, z: seen.append(z),
                        project=trust_region(start, 2, None, CLASSES, denormalize))
    edits = [(decoded(z, denormalize) != decoded(start, denormalize)).sum(1) for z in seen]
    assert max(e.max() for e in edits) == 2 and torch.equal(seen[-1], x)
    free = gradient_ascent(net, start, steps=30, lr=0.3)
    assert (decoded(free, denormalize) != decoded(start, denormalize)).sum(1).max() > 2  # unbounded, it edits more

    vectors, steps = torch.randn(20, 4), []
    gradient_ascent(MLPSurrogate(4, (16,)), vectors, steps=30, lr=0.1, observe=lambda s, z: steps.append(z),
                    project=trust_region(vectors, None, 0.5, None, lambda z: z))
    distances = torch.stack([(z - vectors).norm(dim=1) for z in steps])
    assert distances.max() <= 0.5 * (1 + 1e-6) and distances[-1].max() > 0.5 * (1 - 1e-6)


def test_a_region_that_never_binds_changes_nothing_bit_for_bit():
    denormalize, start, _ = token_space(2)
    torch.manual_seed(0)
    net = MLPSurrogate(start.shape[1], (16,))
    search = partial(gradient_ascent, net, start, steps=20, lr=0.3)
    free = search()
    assert (decoded(free, denormalize) != decoded(start, denormalize)).sum(1).max() == LENGTH  # edits every position
    for k in (LENGTH, 99):  # a budget of every position, or more: never binds
        assert torch.equal(search(project=trust_region(start, k, None, CLASSES, denormalize)), free)
    assert torch.equal(search(project=trust_region(start, None, 1e6, None, denormalize)), free)
    assert trust_region(start, None, None, CLASSES, denormalize) is None


def test_a_bound_the_designs_cannot_have_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="search.max_edits bounds token designs; .* use search.max_distance"):
        check_region(2, None, discrete=False)
    with pytest.raises(ConfigError, match="search.max_distance bounds vector designs; .* use search.max_edits"):
        check_region(None, 0.5, discrete=True)
    for fine in ((2, None, True), (None, 0.5, False), (None, None, False)):
        check_region(*fine)
    common = (8, 5, None, "top", 0, 0, None, "mean", 1.0, "adam", "constant")
    with pytest.raises(ConfigError, match=r"search.max_edits must be >= 1 .* got 0"):
        check_settings(*common, max_edits=0)
    with pytest.raises(ConfigError, match=r"search.max_distance must be > 0 .* got -1"):
        check_settings(*common, max_distance=-1.0)
    with pytest.raises(ConfigError, match="search.max_distance must be > 0"):
        DesignSearch(max_distance=0.0)


def test_a_tfbind8_search_with_one_edit_writes_designs_one_edit_from_their_starts(data_root, tmp_path):
    datamodule = MatchOptDataModule(task="tfbind8", data_root=str(data_root), n_bins=16, trajectories_per_batch=4,
                                    seed=0, val_fraction=0)
    model = MatchOptModule(datamodule.input_dim, partial(MLPSurrogate, hidden_dims=(16,)))
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=3, default_root_dir=tmp_path, logger=False,
        callbacks=[DesignSearch(n_designs=32, steps=30, lr=0.5, max_edits=1)],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(model, datamodule=datamodule)
    start = search_start(datamodule.table.x, datamodule.table.y, 32, "top", seed=0)
    start_designs = datamodule.task.from_features(datamodule.denormalize_x(start.double()).numpy())
    edits = (np.load(tmp_path / "designs.npz")["designs"] != start_designs).sum(1)
    assert edits.max() == 1 and (edits == 1).sum() >= 8  # many at the edge of the budget, none beyond it
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["search"]["max_edits"] == 1 and results["search"]["max_distance"] is None


def test_max_distance_through_the_cli_keeps_every_design_near_its_start(tmp_path):
    main(["fit", "--config", str(TINY_CONFIG), f"--trainer.default_root_dir={tmp_path}", "--search.max_distance", "0.1"])
    run = next(tmp_path.glob("lightning_logs/version_*"))
    options = {"n_samples": 400, "max_percentile": 50}  # the tiny config's data
    datamodule = MatchOptDataModule(task="shekel", task_options=options, n_bins=16, seed=0)
    datamodule.setup()
    start = search_start(datamodule.table.x, datamodule.table.y, 16, "top", seed=0).double()
    searched = datamodule.normalize_x(torch.from_numpy(np.load(run / "designs.npz")["features"]))
    distances = (searched - start).norm(dim=1)
    assert distances.max() <= 0.1 + 1e-5 and distances.max() > 0.1 - 1e-5
    assert json.loads((run / "results.json").read_text())["search"]["max_distance"] == 0.1
