"""Lists of offline rows for ranking losses, and the search's components (pure functions)."""

import math

import pytest
import torch

from lightning_matchopt.data import (
    ListSampler,
    MatchOptDataModule,
    RowLists,
    fixed_lists,
    random_lists,
)
from lightning_matchopt.data.lists import seeded_generator
from lightning_matchopt.errors import ConfigError, DataError
from lightning_matchopt.models import EnsembleMLP
from lightning_matchopt.search.ascent import (
    gradient_ascent,
    search_objective,
    standardized,
    step_size,
)


def test_random_lists_use_every_row_at_most_once_an_epoch():
    lists = random_lists(1003, 100, seeded_generator(0))
    assert lists.shape == (10, 100) and len(lists.unique()) == 1000 and int(lists.max()) < 1003
    assert torch.equal(lists, random_lists(1003, 100, seeded_generator(0)))  # seeded


def test_fixed_lists_hold_distinct_rows_and_stay_int32():
    lists = fixed_lists(50, 200, 30, seeded_generator(1))
    assert lists.dtype == torch.int32 and lists.shape == (200, 30)
    assert all(len(row.unique()) == 30 for row in lists)
    assert len(lists.unique()) == 50  # across lists, rows repeat: that is the augmentation


def test_list_sampler_gathers_member_major_batches_one_at_a_time():
    spec = RowLists(length=8, lists_per_batch=3, n_lists=10, bootstrap=True)
    sampler = ListSampler(spec, n_rows=40, seed=0, ensemble_size=2)
    batches = list(sampler)
    assert (
        len(batches) == len(sampler) == 3
    )  # 10 lists // 3 a batch; the incomplete batch is dropped
    assert all(b.shape == (6, 8) for b in batches)  # member 0's 3 lists, then member 1's
    assert not torch.equal(sampler.pools[0], sampler.pools[1])  # each member its own bootstrap
    assert len(sampler.pools[0].unique()) < 40  # drawn with replacement
    sampler.set_epoch(1)
    assert not torch.equal(next(iter(sampler)), batches[0])  # another order of the same lists


def test_no_list_augmentation_is_a_permutation_a_batch_one_list():
    spec = RowLists(length=16, lists_per_batch=1)
    batches = list(ListSampler(spec, n_rows=100, seed=0))
    assert len(batches) == 6 and all(b.shape == (1, 16) for b in batches)
    assert len(torch.cat(batches).unique()) == 96


def test_data_module_serves_lists_as_groups_of_rows():
    data = MatchOptDataModule(
        "shekel",
        task_options={"n_samples": 400, "max_percentile": 50},
        n_bins=16,
        val_fraction=0,
        lists=RowLists(length=20, lists_per_batch=4),
    )
    data.setup("fit")
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (4, 20, data.input_dim) and y.shape == (4, 20)
    assert torch.equal(x[0, 0], data.table.x[(data.table.y == y[0, 0]).nonzero()[0, 0]])


def test_bad_lists_fail_with_one_line():
    with pytest.raises(ConfigError, match="length >= 2"):
        RowLists(length=1)
    with pytest.raises(DataError, match="exceeds the 10 training rows"):
        RowLists(length=20).pool(10, 0, 0)


def test_plain_gradient_steps_are_lr_times_the_gradient():
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x0 = torch.randn(4, 3, dtype=torch.float64)
    x = gradient_ascent(lambda z: z @ w, x0, steps=7, lr=0.1, optimizer="gradient")
    assert torch.allclose(x, x0 + 7 * 0.1 * w)
    with pytest.raises(ConfigError, match="unknown search.optimizer"):
        gradient_ascent(lambda z: z @ w, x0, optimizer="sgd")


def test_step_rule_scales_by_the_square_root_of_the_width():
    assert step_size(0.01, "sqrt_dim", 24) == pytest.approx(0.01 * math.sqrt(24))
    assert step_size(0.01, "constant", 24) == 0.01


def test_output_adaptation_standardizes_on_the_offline_designs():
    offline = torch.randn(1000, 3, dtype=torch.float64)
    f = lambda z: 5 * z[:, 0] + 3  # noqa: E731
    g = standardized(f, offline, chunk=300)
    values = g(offline)
    assert abs(float(values.mean())) < 1e-12 and float(values.std()) == pytest.approx(1)


def test_min_objective_is_the_members_minimum():
    ensemble = EnsembleMLP(3, (8,), ensemble_size=4).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    assert torch.equal(search_objective(ensemble, "min")(x), ensemble.members(x).min(0).values)
